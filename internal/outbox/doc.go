// Package outbox delivers verified WeChat events (pushes, pay
// notifications) to an upstream at least once: one synchronous attempt, and
// when that fails a durable outbox in Redis or Caddy's storage that workers
// drain with backoff. WeChat's retries of an event (same id) are recognised
// for 24 h and not delivered again, on every instance sharing the store.
package outbox
