package provider

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoFrontEndImports keeps the dependency arrow pointing one way:
// nothing under provider/ imports a front-end (login-ui, admin).
func TestNoFrontEndImports(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-test", "-f", "{{.ImportPath}}: {{join .Imports \" \"}}", "./...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	const mod = "github.com/latchkey/latchkey/"
	for _, line := range strings.Split(string(out), "\n") {
		pkg, imports, ok := strings.Cut(line, ": ")
		if !ok || !strings.HasPrefix(pkg, mod+"provider") {
			continue
		}
		for _, imp := range strings.Fields(imports) {
			if strings.HasPrefix(imp, mod+"login-ui") || strings.HasPrefix(imp, mod+"admin") {
				t.Errorf("%s imports %s", pkg, imp)
			}
		}
	}
}
