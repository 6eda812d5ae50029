// Package brand holds the rule for the product's colour that every place
// using it shares: configuration (LATCHKEY_BRAND_COLOR), the login pages'
// /brand.css and the email templates. One rule, so a value the
// configuration accepts is one every page and email can use.
package brand

import "fmt"

// ColorRule says in words which colours are accepted.
const ColorRule = "must be a hex color #rgb or #rrggbb, such as #2f5bea (named colors and alpha are not accepted)"

// ValidColor reports whether s is a colour Latchkey accepts: "#" and 3 or
// 6 hex digits, either case.
//
// Why so narrow: the value is written into a stylesheet (/brand.css) and
// into inline style attributes of the emails, so it must be inert there;
// and email clients differ on everything else (Outlook's renderer knows
// only some named colors, several webmail clients drop 4- and 8-digit hex
// and functional notations such as rgb()). #rgb and #rrggbb look the same
// in every browser and mail client.
func ValidColor(s string) bool {
	if (len(s) != 4 && len(s) != 7) || s[0] != '#' {
		return false
	}
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case '0' <= c && c <= '9', 'a' <= c && c <= 'f', 'A' <= c && c <= 'F':
		default:
			return false
		}
	}
	return true
}

// CheckColor returns an error quoting s and the rule when s is not
// ValidColor.
func CheckColor(s string) error {
	if ValidColor(s) {
		return nil
	}
	return fmt.Errorf("%q %s", s, ColorRule)
}
