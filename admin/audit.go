package admin

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/latchkey/latchkey/storage"
)

// handleListAudit pages the audit log, newest first, by keyset on the
// event id: ?after=<id of the last event of the previous page>.
func handleListAudit(d Deps) http.Handler {
	return apiHandler(d, func(w http.ResponseWriter, r *http.Request) error {
		q := r.URL.Query()
		aq := storage.AuditQuery{TargetID: q.Get("target"), ActorID: q.Get("actor"), IP: q.Get("ip")}
		for _, a := range qList(q, "action") {
			// "user.*" is accepted for the prefix form "user.".
			if strings.HasSuffix(a, ".*") {
				a = strings.TrimSuffix(a, "*")
			}
			if strings.ContainsAny(a, "*%") || len(a) > 100 {
				return invalidField("action", "must be an action name (user.suspend) or a prefix ending in a dot (user.)")
			}
			aq.Actions = append(aq.Actions, a)
		}
		var err error
		if aq.Since, err = qTime(q, "since"); err != nil {
			return err
		}
		if aq.Until, err = qTime(q, "until"); err != nil {
			return err
		}
		if v := q.Get("after"); v != "" {
			if aq.After, err = strconv.ParseInt(v, 10, 64); err != nil || aq.After <= 0 {
				return invalidField("after", "must be the id of an event")
			}
		}
		limit, err := qInt(q, "limit", 50, 1, 500)
		if err != nil {
			return err
		}
		// One more than asked tells whether there is a next page.
		aq.Limit = min(limit+1, 500)
		events, err := d.Accounts.ListAudit(r.Context(), aq)
		if err != nil {
			return err
		}
		var next *string
		if len(events) > limit || (limit == 500 && len(events) == limit) {
			events = events[:limit]
			next = nextLink(r, strconv.FormatInt(events[limit-1].ID, 10))
		}
		writeJSON(w, http.StatusOK, map[string]any{"events": viewEvents(events), "next": next})
		return nil
	})
}
