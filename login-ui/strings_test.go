package loginui

import (
	"reflect"
	"testing"
)

// Every string of the UI has an English text: a field added to Strings
// but not to English would render as nothing.
func TestEnglishComplete(t *testing.T) {
	v := reflect.ValueOf(English)
	for i := range v.NumField() {
		f := v.Field(i)
		if f.Kind() == reflect.String && f.String() == "" {
			t.Errorf("English.%s is empty", v.Type().Field(i).Name)
		}
	}
}
