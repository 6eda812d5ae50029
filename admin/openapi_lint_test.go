package admin

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"unicode"

	"go.yaml.in/yaml/v3"
)

// In a flow mapping ({description: a, b, schema: …}) an unquoted comma
// ends the value: "b" becomes a key without a value, which YAML accepts
// and OpenAPI tools refuse (issue 9.17). Any key whose value is missing
// in a flow mapping is such a fragment; a deliberate null is written
// "null".
func TestOpenAPIFlowMappingsHaveNoStrayKeys(t *testing.T) {
	var doc yaml.Node
	if err := yaml.Unmarshal(openAPISpec, &doc); err != nil {
		t.Fatal(err)
	}
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n.Kind == yaml.MappingNode && n.Style&yaml.FlowStyle != 0 {
			for i := 0; i+1 < len(n.Content); i += 2 {
				if v := n.Content[i+1]; v.Tag == "!!null" && v.Value == "" {
					t.Errorf("openapi.yaml line %d column %d: %q has no value: quote the text before it if it holds a comma",
						n.Content[i].Line, n.Content[i].Column, n.Content[i].Value)
				}
			}
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(&doc)
}

// oapiCodegenNames are the Go identifiers oapi-codegen (v2, default
// settings: types, client, echo server, embedded spec) declares itself. A
// schema with one of these names does not compile: a schema "Client"
// gave "Client redeclared" (issue 9.17). CI compiles a generated client
// (scripts/check-openapi.sh); this catches the same thing in `make test`.
var oapiCodegenNames = []string{
	"Client", "ClientOption", "ClientInterface", "ClientWithResponses", "ClientWithResponsesInterface",
	"HttpRequestDoer", "RequestEditorFn", "NewClient", "NewClientWithResponses", "WithHTTPClient",
	"WithBaseURL", "WithRequestEditorFn", "ServerInterface", "ServerInterfaceWrapper", "EchoRouter",
	"RegisterHandlers", "RegisterHandlersWithBaseURL", "GetSwagger", "PathToRawSpec",
}

// goTypeName is the Go name oapi-codegen gives a schema or operation id:
// its words (split at anything not a letter or digit) capitalized.
func goTypeName(s string) string {
	var b strings.Builder
	for _, w := range strings.FieldsFunc(s, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }) {
		b.WriteString(strings.ToUpper(w[:1]) + w[1:])
	}
	return b.String()
}

func TestOpenAPISchemaNamesCompileWithOapiCodegen(t *testing.T) {
	var s struct {
		Paths      map[string]map[string]yaml.Node `yaml:"paths"`
		Components struct {
			Schemas map[string]yaml.Node `yaml:"schemas"`
		} `yaml:"components"`
	}
	if err := yaml.Unmarshal(openAPISpec, &s); err != nil {
		t.Fatal(err)
	}
	taken := map[string]string{}
	for _, n := range oapiCodegenNames {
		taken[n] = "a type oapi-codegen declares"
	}
	for path, item := range s.Paths {
		for method, node := range item {
			if !slices.Contains(httpMethods, method) {
				continue
			}
			var op struct {
				OperationID string `yaml:"operationId"`
			}
			if err := node.Decode(&op); err != nil {
				t.Fatal(err)
			}
			if op.OperationID == "" {
				t.Errorf("%s %s has no operationId", method, path)
				continue
			}
			o := goTypeName(op.OperationID)
			for _, n := range []string{o + "Response", o + "Params", o + "JSONBody", o + "JSONRequestBody",
				"New" + o + "Request", "Parse" + o + "Response"} {
				taken[n] = fmt.Sprintf("generated for operation %s", op.OperationID)
			}
		}
	}
	if len(s.Components.Schemas) < 10 {
		t.Fatalf("only %d schemas", len(s.Components.Schemas))
	}
	for name := range s.Components.Schemas {
		if why, ok := taken[goTypeName(name)]; ok {
			t.Errorf("schema %q becomes Go type %s, %s: rename the schema", name, goTypeName(name), why)
		}
	}
}
