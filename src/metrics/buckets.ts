/**
 * Histogram buckets shared by the metric groups, in seconds. A chunk usually reaches its
 * client in well under a millisecond, but a slow pipeline or a saturated pool takes seconds:
 * the buckets resolve both ends.
 */
export const LATENCY_BUCKETS_SECONDS = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
];

/** Every metric this service defines starts with this. */
export const METRIC_PREFIX = 'tandem_';
