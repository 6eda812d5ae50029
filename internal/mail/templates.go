package mail

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	netmail "net/mail"
	"net/url"
	"regexp"
	"slices"
	"strings"
	texttemplate "text/template"
	"time"
	"unicode"

	"github.com/latchkey/latchkey/internal/brand"
)

//go:embed templates
var templateFS embed.FS

// Kind names one of the product's emails. Its value is the base name of the
// template files (templates/KIND.html, templates/KIND.txt).
type Kind string

// The product's emails. The Data fields each one uses are listed; "required"
// ones make Render fail when empty.
const (
	// KindWelcome greets a new user. Data: Name; Link (optional: confirms
	// the address of a registration, which creates the account);
	// ExpiresIn (optional).
	KindWelcome Kind = "welcome"
	// KindVerifyEmail asks to verify the address. Data: Name, Link
	// (required), ExpiresIn.
	KindVerifyEmail Kind = "verify_email"
	// KindPasswordReset carries a password-reset link. Data: Name, Link
	// (required), ExpiresIn.
	KindPasswordReset Kind = "password_reset"
	// KindPasswordChanged notifies that the password changed and all
	// sessions were signed out. Data: Name, IP (optional).
	KindPasswordChanged Kind = "password_changed"
	// KindAccountLocked notifies that sign-in is locked after too many
	// failed attempts. Data: Name, Until (required), Link (optional: reset
	// password), IP (optional).
	KindAccountLocked Kind = "account_locked"
	// KindEmailChange goes to the NEW address to confirm it. Data: Name,
	// Link (required), ExpiresIn, NewEmail (optional).
	KindEmailChange Kind = "email_change"
	// KindEmailChangedNotice goes to the OLD address after a change. Data:
	// Name, NewEmail (required), IP (optional).
	KindEmailChangedNotice Kind = "email_changed_notice"
	// KindAccountDeleted confirms a deletion that support can undo during
	// the grace period. Data: Name, Until (optional: end of the grace period).
	KindAccountDeleted Kind = "account_deleted"
	// KindAccountExists goes to the owner of an address someone tried to
	// register (or move another account) to: registration answers the
	// same either way, and the owner learns of it here. Data: Name, Link
	// (optional: reset password).
	KindAccountExists Kind = "account_exists"
	// KindFactorAdded, KindFactorRemoved and KindRecoveryCodeUsed tell the
	// owner that two-step verification changed or a recovery code signed
	// them in. Data: Name, IP (optional).
	KindFactorAdded      Kind = "factor_added"
	KindFactorRemoved    Kind = "factor_removed"
	KindRecoveryCodeUsed Kind = "recovery_code_used"
)

// Kinds returns every Kind.
func Kinds() []Kind {
	return slices.Clone(kindOrder)
}

var kindOrder = []Kind{
	KindWelcome, KindVerifyEmail, KindPasswordReset, KindPasswordChanged,
	KindAccountLocked, KindEmailChange, KindEmailChangedNotice, KindAccountDeleted, KindAccountExists,
	KindFactorAdded, KindFactorRemoved, KindRecoveryCodeUsed,
}

type kindSpec struct {
	subject      string // %s is the product name when present
	button       string // label of the Link button
	needLink     bool
	needUntil    bool
	needNewEmail bool
}

var kindSpecs = map[Kind]kindSpec{
	KindWelcome:            {subject: "Welcome to %s", button: "Confirm email address"},
	KindVerifyEmail:        {subject: "Verify your email address", button: "Verify email address", needLink: true},
	KindPasswordReset:      {subject: "Reset your password", button: "Reset password", needLink: true},
	KindPasswordChanged:    {subject: "Your password was changed"},
	KindAccountLocked:      {subject: "Sign-in temporarily locked", button: "Reset password", needUntil: true},
	KindEmailChange:        {subject: "Confirm your new email address", button: "Confirm email address", needLink: true},
	KindEmailChangedNotice: {subject: "Your email address was changed", needNewEmail: true},
	KindAccountDeleted:     {subject: "Your account was deleted"},
	KindAccountExists:      {subject: "You already have an account", button: "Reset password"},
	KindFactorAdded:        {subject: "A sign-in method was added"},
	KindFactorRemoved:      {subject: "A sign-in method was removed"},
	KindRecoveryCodeUsed:   {subject: "A recovery code was used"},
}

// subject returns the subject line, mentioning the product.
func (k kindSpec) subjectFor(product string) string {
	if strings.Contains(k.subject, "%s") {
		return fmt.Sprintf(k.subject, product)
	}
	return k.subject + " - " + product
}

// Brand is what the emails say about the product.
type Brand struct {
	// Product is the product name (required), e.g. "Latchkey".
	Product string
	// SupportEmail is where users get help (optional but recommended).
	SupportEmail string
	// LogoURL is an absolute https URL of a logo image (optional; the product
	// name is shown otherwise).
	LogoURL string
	// PrimaryColor is the button and accent color, as internal/brand
	// accepts it: #rgb or #rrggbb (default #1f4fd1).
	PrimaryColor string
}

const defaultPrimaryColor = "#1f4fd1"

// Data fills in one email. Which fields a Kind uses is documented on it.
type Data struct {
	// Name is the recipient's display name; the greeting is "Hello," when empty.
	Name string
	// Link is an absolute http(s) URL: verification, reset or confirmation.
	Link string
	// ExpiresIn is how long Link is valid ("expires in 24 hours").
	ExpiresIn time.Duration
	// NewEmail is the new address (KindEmailChangedNotice, KindEmailChange).
	NewEmail string
	// IP is the client address that caused the notice (optional).
	IP string
	// Until is when a lock ends (KindAccountLocked) or a grace period ends
	// (KindAccountDeleted); shown in UTC, RFC 1123.
	Until time.Time
}

// view is what the templates see.
type view struct {
	Brand   Brand
	Subject string
	Button  string

	Name     string
	Link     string
	Expires  string // humanized ExpiresIn, "" when unset
	NewEmail string
	IP       string
	Until    string // UTC, RFC 1123; "" when unset
}

type kindTemplates struct {
	html *htmltemplate.Template
	text *texttemplate.Template
}

// Templates renders the product's emails from the embedded templates. It is
// safe for concurrent use.
type Templates struct {
	brand Brand
	kinds map[Kind]kindTemplates
}

// NewTemplates parses the templates once and checks that every kind renders.
// It fails on a broken template or an invalid Brand.
func NewTemplates(b Brand) (*Templates, error) {
	b.Product = strings.TrimSpace(b.Product)
	if b.Product == "" {
		return nil, errors.New("mail: Brand.Product is required")
	}
	if hasControl(b.Product) {
		return nil, errors.New("mail: Brand.Product contains control characters")
	}
	if b.SupportEmail != "" {
		a, err := netmail.ParseAddress(b.SupportEmail)
		if err != nil || a.Name != "" {
			return nil, fmt.Errorf("mail: Brand.SupportEmail %q is not a plain email address", b.SupportEmail)
		}
		b.SupportEmail = a.Address
	}
	if b.LogoURL != "" {
		if err := checkHTTPURL(b.LogoURL); err != nil {
			return nil, fmt.Errorf("mail: Brand.LogoURL: %w", err)
		}
	}
	if b.PrimaryColor == "" {
		b.PrimaryColor = defaultPrimaryColor
	}
	if err := brand.CheckColor(b.PrimaryColor); err != nil {
		return nil, fmt.Errorf("mail: Brand.PrimaryColor: %w", err)
	}
	t, err := parseTemplates(b, templateFS)
	if err != nil {
		return nil, err
	}
	return t, nil
}

func parseTemplates(b Brand, fsys fs.FS) (*Templates, error) {
	htmlBase, err := htmltemplate.New("layout.html").ParseFS(fsys, "templates/layout.html")
	if err != nil {
		return nil, fmt.Errorf("mail: parse templates: %w", err)
	}
	textBase, err := texttemplate.New("layout.txt").ParseFS(fsys, "templates/layout.txt")
	if err != nil {
		return nil, fmt.Errorf("mail: parse templates: %w", err)
	}
	t := &Templates{brand: b, kinds: make(map[Kind]kindTemplates, len(kindOrder))}
	for _, k := range kindOrder {
		h, err := htmlBase.Clone()
		if err != nil {
			return nil, fmt.Errorf("mail: parse templates: %w", err)
		}
		if h, err = h.ParseFS(fsys, "templates/"+string(k)+".html"); err != nil {
			return nil, fmt.Errorf("mail: parse templates: %w", err)
		}
		x, err := textBase.Clone()
		if err != nil {
			return nil, fmt.Errorf("mail: parse templates: %w", err)
		}
		if x, err = x.ParseFS(fsys, "templates/"+string(k)+".txt"); err != nil {
			return nil, fmt.Errorf("mail: parse templates: %w", err)
		}
		if h.Lookup("content") == nil || x.Lookup("content") == nil {
			return nil, fmt.Errorf("mail: templates for %s do not define \"content\"", k)
		}
		t.kinds[k] = kindTemplates{html: h, text: x}
	}
	// Catch execution errors (bad field names, ...) now rather than when a
	// user is waiting for their email.
	sample := Data{
		Name: "Ada", Link: "https://example.com/x?token=abc", ExpiresIn: time.Hour,
		NewEmail: "new@example.com", IP: "192.0.2.1", Until: time.Unix(0, 0),
	}
	for _, k := range kindOrder {
		if _, err := t.Render(k, "ada@example.com", sample); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// Render produces the message of the given kind for the recipient to. It
// fails for an unknown kind, an invalid recipient, a Link that is not an
// absolute http(s) URL, or a missing required Data field (see the Kind
// constants).
func (t *Templates) Render(kind Kind, to string, data Data) (Message, error) {
	spec, ok := kindSpecs[kind]
	kt, ok2 := t.kinds[kind]
	if !ok || !ok2 {
		return Message{}, fmt.Errorf("mail: unknown email kind %q", kind)
	}
	if _, err := netmail.ParseAddress(to); err != nil {
		return Message{}, fmt.Errorf("mail: render %s: invalid recipient: %w", kind, err)
	}
	if data.Link != "" {
		if err := checkHTTPURL(data.Link); err != nil {
			return Message{}, fmt.Errorf("mail: render %s: Link: %w", kind, err)
		}
	}
	switch {
	case spec.needLink && data.Link == "":
		return Message{}, fmt.Errorf("mail: render %s: Link is required", kind)
	case spec.needUntil && data.Until.IsZero():
		return Message{}, fmt.Errorf("mail: render %s: Until is required", kind)
	case spec.needNewEmail && strings.TrimSpace(data.NewEmail) == "":
		return Message{}, fmt.Errorf("mail: render %s: NewEmail is required", kind)
	}

	v := view{
		Brand:    t.brand,
		Subject:  spec.subjectFor(t.brand.Product),
		Button:   spec.button,
		Name:     oneLine(data.Name),
		Link:     data.Link,
		Expires:  humanizeDuration(data.ExpiresIn),
		NewEmail: oneLine(data.NewEmail),
		IP:       oneLine(data.IP),
	}
	if !data.Until.IsZero() {
		v.Until = data.Until.UTC().Format(time.RFC1123)
	}

	var html, text bytes.Buffer
	if err := kt.html.ExecuteTemplate(&html, "layout", v); err != nil {
		return Message{}, fmt.Errorf("mail: render %s (html): %w", kind, err)
	}
	if err := kt.text.ExecuteTemplate(&text, "layout", v); err != nil {
		return Message{}, fmt.Errorf("mail: render %s (text): %w", kind, err)
	}
	return Message{To: to, Subject: v.Subject, Text: tidyText(text.String()), HTML: html.String()}, nil
}

func checkHTTPURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return errors.New("not a valid URL")
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return errors.New("want an absolute http(s) URL")
	}
	if strings.ContainsAny(s, " \t\r\n") {
		return errors.New("URL contains whitespace")
	}
	return nil
}

func hasControl(s string) bool {
	return strings.IndexFunc(s, unicode.IsControl) >= 0
}

// oneLine trims s and replaces control characters (newlines included) with
// spaces, so user-supplied values cannot add lines to the text part.
func oneLine(s string) string {
	return strings.TrimSpace(strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s))
}

var blankLinesRE = regexp.MustCompile(`\n{3,}`)

// tidyText trims trailing spaces on lines and collapses runs of blank lines
// that template conditionals leave behind.
func tidyText(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " \t")
	}
	s = blankLinesRE.ReplaceAllString(strings.Join(lines, "\n"), "\n\n")
	return strings.TrimSpace(s) + "\n"
}

// humanizeDuration renders d for "expires in ...": "24 hours", "1 hour",
// "30 minutes", "1 hour and 30 minutes", "7 days". Whole days are used from
// 48 hours up; below that, hours and minutes (rounded to the minute).
func humanizeDuration(d time.Duration) string {
	if d <= 0 {
		return ""
	}
	if d < time.Minute {
		return "less than a minute"
	}
	d = d.Round(time.Minute)
	if d >= 48*time.Hour && d%(24*time.Hour) == 0 {
		return plural(int(d/(24*time.Hour)), "day")
	}
	h, m := int(d/time.Hour), int((d%time.Hour)/time.Minute)
	switch {
	case h == 0:
		return plural(m, "minute")
	case m == 0:
		return plural(h, "hour")
	default:
		return plural(h, "hour") + " and " + plural(m, "minute")
	}
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}
