package sqlstore

import (
	"context"
	"sync"
	"time"

	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/storage"
)

// clientCache keeps client records for a short TTL. Clients are read on
// every token request (authentication) and every token lookup (fosite
// rebuilds the request with its client), but change rarely: caching them
// makes the token endpoint one database round trip per token. A change
// made through another replica takes effect within the TTL; one made
// through this store takes effect at once.
type clientCache struct {
	ttl   time.Duration
	mu    sync.RWMutex
	items map[string]cachedClient
}

type cachedClient struct {
	client  *storage.Client
	expires time.Time
}

// maxCachedClients bounds memory under a flood of unknown client ids
// (misses are not cached, but a large fleet of real clients could be).
const maxCachedClients = 10000

// newClientCache returns a cache for ttl (> 0), or nil (off).
func newClientCache(ttl time.Duration) *clientCache {
	if ttl <= 0 {
		return nil
	}
	return &clientCache{ttl: ttl, items: make(map[string]cachedClient)}
}

func (c *clientCache) get(id string) (*storage.Client, bool) {
	if c == nil {
		return nil, false
	}
	c.mu.RLock()
	it, ok := c.items[id]
	c.mu.RUnlock()
	if !ok || time.Now().After(it.expires) {
		return nil, false
	}
	return it.client, true
}

func (c *clientCache) put(cl *storage.Client) {
	if c == nil {
		return
	}
	c.mu.Lock()
	if len(c.items) >= maxCachedClients {
		clear(c.items)
	}
	c.items[cl.ID] = cachedClient{client: cl, expires: time.Now().Add(c.ttl)}
	c.mu.Unlock()
}

func (c *clientCache) forget(id string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	delete(c.items, id)
	c.mu.Unlock()
}

// cachedGetClient serves fosite's GetClient from the cache when it is on.
func (s *SQLStore) cachedGetClient(ctx context.Context, id string) (fosite.Client, error) {
	if c, ok := s.clients.get(id); ok {
		return c, nil
	}
	c, err := s.GetClientByID(ctx, id)
	if err != nil {
		return nil, err
	}
	s.clients.put(c)
	return c, nil
}
