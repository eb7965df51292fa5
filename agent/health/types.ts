/**
 * Health in the shape of draft-inadarei-api-health-check (application/health+json):
 * a top-level status and a `checks` object whose keys are "component:measurement"
 * and whose values are arrays of results (one per component instance).
 */
export type HealthStatus = 'pass' | 'warn' | 'fail';

export interface CheckResult {
  status: HealthStatus;
  componentId?: string;
  componentType?: string;
  observedValue?: number | string | boolean | null;
  observedUnit?: string;
  /** Human-readable reason, set for warn and fail (and for absent hardware). */
  output?: string;
  /** ISO time of the sample the result was computed from. */
  time?: string;
}

/** A named check computed from cached state; must not do I/O. */
export interface HealthCheck {
  readonly name: string;
  run(): CheckResult[];
}
