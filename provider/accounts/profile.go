package accounts

import (
	"bytes"
	"encoding/json"
	"net/url"
	"regexp"
	"strings"
	"time"
	_ "time/tzdata" // zoneinfo is checked against the IANA database even where the OS has none (distroless images)
	"unicode"

	"golang.org/x/text/language"

	"github.com/latchkey/latchkey/storage"
)

// This file is the one place the profile's rules live: the self-service
// pages and account API (UpdateProfile) and the admin API
// (AdminUpdateUser) both apply them through applyProfile.

// MaxMetadataBytes bounds user_metadata and app_metadata.
const MaxMetadataBytes = 16 << 10

// e164 is an international phone number: +, a country code, up to 15
// digits in all (ITU-T E.164).
var e164 = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)

// birthdatePattern: YYYY-MM-DD, 0000-MM-DD (year withheld) or YYYY (year
// only), as OIDC Core §5.1 allows.
var birthdatePattern = regexp.MustCompile(`^[0-9]{4}(-[0-9]{2}-[0-9]{2})?$`)

// checkName is a person's name part or nickname: trimmed, at most max
// characters, no control characters.
func checkName(field, v string, max int) (string, error) {
	v = strings.TrimSpace(v)
	if len([]rune(v)) > max {
		return "", invalid(field, "must be at most %d characters", max)
	}
	for _, r := range v {
		if unicode.IsControl(r) {
			return "", invalid(field, "must not contain control characters")
		}
	}
	return v, nil
}

func checkURL(field, v string, schemes ...string) (string, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return "", nil
	}
	u, err := url.Parse(v)
	ok := err == nil && u.Host != "" && len(v) <= 2000
	if ok {
		ok = false
		for _, s := range schemes {
			ok = ok || u.Scheme == s
		}
	}
	if !ok {
		return "", invalid(field, "must be an %s:// URL", strings.Join(schemes, ":// or "))
	}
	return v, nil
}

func checkZoneinfo(v string) (string, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return "", nil
	}
	if v == "Local" || len(v) > 64 {
		return "", invalid("zoneinfo", "must be an IANA time zone such as Europe/Paris")
	}
	if _, err := time.LoadLocation(v); err != nil {
		return "", invalid("zoneinfo", "must be an IANA time zone such as Europe/Paris")
	}
	return v, nil
}

func checkBirthdate(v string, now time.Time) (string, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return "", nil
	}
	const msg = "must be a date YYYY-MM-DD (0000-MM-DD without the year, or YYYY alone)"
	if !birthdatePattern.MatchString(v) {
		return "", invalid("birthdate", msg)
	}
	if len(v) == 4 {
		if v == "0000" || v > now.Format("2006") {
			return "", invalid("birthdate", msg)
		}
		return v, nil
	}
	check := v
	if strings.HasPrefix(v, "0000-") {
		check = "2000" + v[4:] // a leap year, so 0000-02-29 is accepted
	}
	d, err := time.Parse(time.DateOnly, check)
	if err != nil || (!strings.HasPrefix(v, "0000-") && d.After(now)) {
		return "", invalid("birthdate", msg)
	}
	return v, nil
}

func checkPhone(v string) (string, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return "", nil
	}
	// People type spaces, dots, dashes and brackets; E.164 has none.
	clean := strings.Map(func(r rune) rune {
		if strings.ContainsRune(" .-()", r) {
			return -1
		}
		return r
	}, v)
	if !e164.MatchString(clean) {
		return "", invalid("phone_number", "must be an international number such as +33612345678 (E.164)")
	}
	return clean, nil
}

func checkAddress(a storage.Address) (*storage.Address, error) {
	fields := []struct {
		name string
		v    *string
		max  int
	}{
		{"address.formatted", &a.Formatted, 500}, {"address.street_address", &a.StreetAddress, 200},
		{"address.locality", &a.Locality, 100}, {"address.region", &a.Region, 100},
		{"address.postal_code", &a.PostalCode, 20}, {"address.country", &a.Country, 100},
	}
	for _, f := range fields {
		v := strings.TrimSpace(*f.v)
		if len([]rune(v)) > f.max {
			return nil, invalid(f.name, "must be at most %d characters", f.max)
		}
		for _, r := range v {
			if unicode.IsControl(r) && r != '\n' {
				return nil, invalid(f.name, "must not contain control characters")
			}
		}
		*f.v = v
	}
	if a == (storage.Address{}) {
		return nil, nil
	}
	return &a, nil
}

// checkMetadata accepts a JSON object of at most MaxMetadataBytes and
// returns it compacted; null and {} clear it.
func checkMetadata(field string, raw []byte) ([]byte, error) {
	if len(raw) > MaxMetadataBytes {
		return nil, invalid(field, "must be at most %d bytes", MaxMetadataBytes)
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var obj map[string]json.RawMessage
	if raw[0] != '{' || json.Unmarshal(raw, &obj) != nil {
		return nil, invalid(field, "must be a JSON object")
	}
	if len(obj) == 0 {
		return nil, nil
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return nil, invalid(field, "must be a JSON object")
	}
	return buf.Bytes(), nil
}

// applyProfile validates p and applies it to u, recording in changes what
// changed (metadata and address by name only: their content may be
// personal). Nothing is applied when a field is refused.
func (s *Service) applyProfile(u *storage.User, p ProfileUpdate, changes map[string]any) error {
	next := *u
	if p.Username != nil {
		name := strings.ToLower(strings.TrimSpace(*p.Username))
		if !usernamePattern.MatchString(name) {
			return invalid("username", msgUsername)
		}
		next.Username, changes["username"] = name, name
	}
	if p.DisplayName != nil {
		name, err := checkName("display_name", *p.DisplayName, 100)
		if err != nil {
			return err
		}
		next.DisplayName, changes["display_name"] = name, name
	}
	if p.PictureURL != nil {
		pic, err := checkURL("picture_url", *p.PictureURL, "https")
		if err != nil {
			return err
		}
		next.PictureURL, changes["picture_url"] = pic, pic
	}
	if p.Locale != nil {
		loc := strings.TrimSpace(*p.Locale)
		if loc != "" {
			tag, err := language.Parse(loc)
			if err != nil {
				return invalid("locale", "must be a language tag such as en or en-GB")
			}
			loc = tag.String()
		}
		next.Locale, changes["locale"] = loc, loc
	}
	for _, f := range []struct {
		name string
		in   *string
		dst  *string
		max  int
	}{
		{"given_name", p.GivenName, &next.GivenName, 100}, {"family_name", p.FamilyName, &next.FamilyName, 100},
		{"middle_name", p.MiddleName, &next.MiddleName, 100}, {"nickname", p.Nickname, &next.Nickname, 100},
	} {
		if f.in == nil {
			continue
		}
		v, err := checkName(f.name, *f.in, f.max)
		if err != nil {
			return err
		}
		*f.dst, changes[f.name] = v, v
	}
	if p.Website != nil {
		v, err := checkURL("website", *p.Website, "https", "http")
		if err != nil {
			return err
		}
		next.Website, changes["website"] = v, v
	}
	if p.Zoneinfo != nil {
		v, err := checkZoneinfo(*p.Zoneinfo)
		if err != nil {
			return err
		}
		next.Zoneinfo, changes["zoneinfo"] = v, v
	}
	if p.Birthdate != nil {
		v, err := checkBirthdate(*p.Birthdate, s.now())
		if err != nil {
			return err
		}
		next.Birthdate, changes["birthdate"] = v, v
	}
	if p.PhoneNumber != nil {
		v, err := checkPhone(*p.PhoneNumber)
		if err != nil {
			return err
		}
		if v != next.PhoneNumber {
			next.PhoneNumberVerified = false // a new number is not verified, unless the same admin change says so
		}
		next.PhoneNumber, changes["phone_number"] = v, v
	}
	if p.Address != nil {
		a, err := checkAddress(*p.Address)
		if err != nil {
			return err
		}
		next.Address, changes["address"] = a, "changed"
	}
	if p.UserMetadata != nil {
		m, err := checkMetadata("user_metadata", *p.UserMetadata)
		if err != nil {
			return err
		}
		next.UserMetadata, changes["user_metadata"] = m, "changed"
	}
	*u = next
	return nil
}
