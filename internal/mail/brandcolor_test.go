package mail

import (
	"strings"
	"testing"

	"github.com/latchkey/latchkey/internal/brand"
)

// checkColor: the templates accept c exactly when internal/brand does
// (so nothing configuration accepts can stop the server at start, issue
// 9.10), and an accepted colour reaches the HTML as it is, in every
// place the layout uses it.
func checkColor(t *testing.T, c string) {
	t.Helper()
	tp, err := NewTemplates(Brand{Product: "Latchkey", SupportEmail: "help@example.com", PrimaryColor: c})
	if !brand.ValidColor(c) {
		if err == nil && c != "" {
			t.Fatalf("NewTemplates accepted %q, which internal/brand refuses", c)
		}
		return
	}
	if err != nil {
		t.Fatalf("NewTemplates(%q): %v", c, err)
	}
	m, err := tp.Render(KindVerifyEmail, "a@example.com", Data{Link: "https://id.example.com/v?t=1"})
	if err != nil {
		t.Fatalf("%q: Render: %v", c, err)
	}
	for _, want := range []string{"background-color:" + c + ";", "color:" + c + ";"} {
		if !strings.Contains(m.HTML, want) {
			t.Fatalf("%q: the HTML does not contain %q", c, want)
		}
	}
	if strings.Contains(m.HTML, "ZgotmplZ") {
		t.Fatalf("%q: html/template refused the colour in the HTML", c)
	}
}

func TestTemplatesAcceptEveryValidColor(t *testing.T) {
	colors := []string{"#000", "#fff", "#FFF", "#000000", "#ffffff", "#2f5bea", "#2F5BEA", "#1f4fd1", "#0a7"}
	for _, d := range "0123456789abcdefABCDEF" {
		colors = append(colors, "#"+strings.Repeat(string(d), 3), "#"+strings.Repeat(string(d), 6), "#0"+string(d)+"F", "#12"+string(d)+"a"+string(d)+"F")
	}
	for _, c := range colors {
		if !brand.ValidColor(c) {
			t.Fatalf("test color %q is not valid", c)
		}
		checkColor(t, c)
	}
	for _, c := range []string{"red", "#2f5beaff", "#abcd", "rgb(0,0,0)", "#2f5bea;x"} {
		checkColor(t, c)
	}
}

func FuzzTemplatesBrandColor(f *testing.F) {
	for _, c := range []string{"#2f5bea", "#ABC", "red", "#2f5beaff", "#12345", "", "#2f5bea\"", "#0a7;}"} {
		f.Add(c)
	}
	f.Fuzz(checkColor)
}
