package accounts

import (
	"reflect"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/storage"
)

func bytesp(s string) *[]byte { b := []byte(s); return &b }

func TestProfileFields(t *testing.T) {
	e := sqliteEnv(t)
	u := e.user(t, "ada", "ada@example.com", true)
	for _, tc := range []struct {
		name  string
		p     ProfileUpdate
		field string // "" = accepted
		check func(t *testing.T, u *storage.User)
	}{
		{"names", ProfileUpdate{GivenName: strp(" Ada "), FamilyName: strp("Lovelace"), MiddleName: strp("King"), Nickname: strp("ada")}, "",
			func(t *testing.T, u *storage.User) {
				if u.GivenName != "Ada" || u.FamilyName != "Lovelace" || u.MiddleName != "King" || u.Nickname != "ada" {
					t.Fatalf("names = %+v", u)
				}
			}},
		{"name too long", ProfileUpdate{GivenName: strp(strings.Repeat("a", 101))}, "given_name", nil},
		{"name control char", ProfileUpdate{Nickname: strp("a\x07b")}, "nickname", nil},
		{"website https", ProfileUpdate{Website: strp("https://ada.example/")}, "", nil},
		{"website http", ProfileUpdate{Website: strp("http://ada.example/")}, "", nil},
		{"website javascript", ProfileUpdate{Website: strp("javascript:alert(1)")}, "website", nil},
		{"website relative", ProfileUpdate{Website: strp("/me")}, "website", nil},
		{"zoneinfo", ProfileUpdate{Zoneinfo: strp("Europe/Paris")}, "", nil},
		{"zoneinfo unknown", ProfileUpdate{Zoneinfo: strp("Mars/Olympus")}, "zoneinfo", nil},
		{"zoneinfo Local", ProfileUpdate{Zoneinfo: strp("Local")}, "zoneinfo", nil},
		{"birthdate", ProfileUpdate{Birthdate: strp("1815-12-10")}, "", nil},
		{"birthdate without year", ProfileUpdate{Birthdate: strp("0000-02-29")}, "", nil},
		{"birthdate year only", ProfileUpdate{Birthdate: strp("1815")}, "", nil},
		{"birthdate impossible", ProfileUpdate{Birthdate: strp("1815-02-30")}, "birthdate", nil},
		{"birthdate future", ProfileUpdate{Birthdate: strp("2999-01-01")}, "birthdate", nil},
		{"birthdate US order", ProfileUpdate{Birthdate: strp("12/10/1815")}, "birthdate", nil},
		{"phone cleaned to E.164", ProfileUpdate{PhoneNumber: strp("+44 (20) 7123-4567")}, "", func(t *testing.T, u *storage.User) {
			if u.PhoneNumber != "+442071234567" || u.PhoneNumberVerified {
				t.Fatalf("phone = %q verified %v", u.PhoneNumber, u.PhoneNumberVerified)
			}
		}},
		{"phone national", ProfileUpdate{PhoneNumber: strp("020 7123 4567")}, "phone_number", nil},
		{"phone too long", ProfileUpdate{PhoneNumber: strp("+1234567890123456")}, "phone_number", nil},
		{"address", ProfileUpdate{Address: &storage.Address{Locality: " London ", Country: "GB"}}, "", func(t *testing.T, u *storage.User) {
			if u.Address == nil || u.Address.Locality != "London" {
				t.Fatalf("address = %+v", u.Address)
			}
		}},
		{"address too long", ProfileUpdate{Address: &storage.Address{PostalCode: strings.Repeat("1", 21)}}, "address.postal_code", nil},
		{"address cleared", ProfileUpdate{Address: &storage.Address{}}, "", func(t *testing.T, u *storage.User) {
			if u.Address != nil {
				t.Fatalf("address = %+v", u.Address)
			}
		}},
		{"metadata object", ProfileUpdate{UserMetadata: bytesp(`{ "bio": "Analyst", "prefs": {"theme": "dark"} }`)}, "",
			func(t *testing.T, u *storage.User) {
				if string(u.UserMetadata) != `{"bio":"Analyst","prefs":{"theme":"dark"}}` {
					t.Fatalf("metadata = %s", u.UserMetadata)
				}
			}},
		{"metadata array", ProfileUpdate{UserMetadata: bytesp(`[1,2]`)}, "user_metadata", nil},
		{"metadata string", ProfileUpdate{UserMetadata: bytesp(`"x"`)}, "user_metadata", nil},
		{"metadata broken", ProfileUpdate{UserMetadata: bytesp(`{"a":`)}, "user_metadata", nil},
		{"metadata too big", ProfileUpdate{UserMetadata: bytesp(`{"a":"` + strings.Repeat("x", MaxMetadataBytes) + `"}`)}, "user_metadata", nil},
		{"metadata cleared", ProfileUpdate{UserMetadata: bytesp(`null`)}, "", func(t *testing.T, u *storage.User) {
			if u.UserMetadata != nil {
				t.Fatalf("metadata = %s", u.UserMetadata)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := e.get(t, u.ID)
			got, err := e.svc.UpdateProfile(e.ctx, u.ID, tc.p)
			if tc.field != "" {
				wantField(t, "UpdateProfile", err, tc.field)
				if after := e.get(t, u.ID); !reflect.DeepEqual(after, before) {
					t.Fatalf("a refused update changed the user:\n%+v\n%+v", before, after)
				}
				return
			}
			must(t, err)
			if tc.check != nil {
				tc.check(t, e.get(t, got.ID))
			}
		})
	}
}

func TestAdminOnlyFields(t *testing.T) {
	e := sqliteEnv(t)
	u := e.user(t, "ada", "ada@example.com", true)
	_, err := e.svc.AdminUpdateUser(e.ctx, u.ID, u.UpdatedAt, UserUpdate{PhoneNumberVerified: boolp(true)})
	wantField(t, "verify without a number", err, "phone_number_verified")
	got, err := e.svc.AdminUpdateUser(e.ctx, u.ID, u.UpdatedAt, UserUpdate{ProfileUpdate: ProfileUpdate{PhoneNumber: strp("+33612345678")},
		PhoneNumberVerified: boolp(true), AppMetadata: bytesp(`{"department":"R&D"}`)})
	must(t, err)
	if !got.PhoneNumberVerified || string(got.AppMetadata) != `{"department":"R&D"}` {
		t.Fatalf("after admin update: %+v", got)
	}
	_, err = e.svc.AdminUpdateUser(e.ctx, u.ID, got.UpdatedAt, UserUpdate{AppMetadata: bytesp(`[]`)})
	wantField(t, "app_metadata array", err, "app_metadata")
	// The person changing their number loses the verification.
	got, err = e.svc.UpdateProfile(e.ctx, u.ID, ProfileUpdate{PhoneNumber: strp("+33699999999")})
	must(t, err)
	if got.PhoneNumberVerified || string(got.AppMetadata) != `{"department":"R&D"}` {
		t.Fatalf("after the person's change: %+v", got)
	}
}

func boolp(b bool) *bool { return &b }
