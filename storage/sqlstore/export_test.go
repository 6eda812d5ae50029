package sqlstore

import "github.com/ory/fosite"

// NewSessionOf exposes a store's session factory to the external tests.
func NewSessionOf(s *SQLStore) fosite.Session { return s.newSession() }
