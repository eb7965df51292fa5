"""Entry point of the demo image: writes index.html into the working
directory naming this container (its hostname: the task's container id in a
swarm service), so each replica can be told apart, then runs the command it
was given (the walkthrough's `python3 -m http.server 8000`)."""
import html
import os
import socket
import sys

name = html.escape(socket.gethostname())
with open('index.html', 'w', encoding='utf-8') as page:
    page.write(f'<!doctype html>\n<title>http-server {name}</title>\n'
               f'<p>piswarm demo http-server, container <b id="container">{name}</b></p>\n')
command = sys.argv[1:] or ['python3', '-m', 'http.server', '8000']
os.execvp(command[0], command)
