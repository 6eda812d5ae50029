package httpx

// RetryAfterOutage is the Retry-After, in seconds, of every answer given
// while the database is unavailable (storage.ErrUnavailable): the same
// advice on every listener and route.
const RetryAfterOutage = "5"
