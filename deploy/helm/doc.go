// Package helm holds the tests of the Helm chart in deploy/helm/latchkey:
// chart_test.go checks invariants of the manifests the chart renders with
// its default values and with values-ha.yaml. scripts/check-helm.sh (make
// helm-check) lints and renders the chart and runs them; without Helm on
// PATH and without LATCHKEY_HELM_RENDERED, they skip.
package helm
