// Command kstatus prints what kstatus computes for Kubernetes objects, as Flux's health checks
// see them: sigs.k8s.io/cli-utils/pkg/kstatus/status.Compute, the function behind Flux's
// generic status reader (Flux's fork, github.com/fluxcd/cli-utils, carries the same package).
//
// It reads one object, or a List of them, as JSON (what `kubectl get -o json` prints) from
// stdin or -f FILE, and writes one JSON line per object:
//
//	{"object":"JwtKeySet/ns/name","status":"Current","message":"Resource is Ready","conditions":[...]}
//
// Exit status: 0, or 2 when the input is not an object kstatus can judge.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

type verdict struct {
	Object     string             `json:"object"`
	Status     status.Status      `json:"status"`
	Message    string             `json:"message"`
	Conditions []status.Condition `json:"conditions"`
}

func main() {
	file := flag.String("f", "-", "the object(s) as JSON; - reads stdin")
	flag.Parse()
	if err := run(*file, os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "kstatus:", err)
		os.Exit(2)
	}
}

func run(file string, stdin io.Reader, stdout io.Writer) error {
	data, err := read(file, stdin)
	if err != nil {
		return err
	}
	objects, err := decode(data)
	if err != nil {
		return err
	}
	out := json.NewEncoder(stdout)
	for _, obj := range objects {
		result, err := status.Compute(obj)
		if err != nil {
			return fmt.Errorf("%s: %w", name(obj), err)
		}
		conditions := result.Conditions
		if conditions == nil {
			conditions = []status.Condition{}
		}
		if err := out.Encode(verdict{name(obj), result.Status, result.Message, conditions}); err != nil {
			return err
		}
	}
	return nil
}

func read(file string, stdin io.Reader) ([]byte, error) {
	if file == "-" {
		return io.ReadAll(stdin)
	}
	return os.ReadFile(file)
}

// decode reads JSON the way client-go does (integers stay int64, which kstatus's generation
// check requires) into one object or the items of a List.
func decode(data []byte) ([]*unstructured.Unstructured, error) {
	decoded, _, err := unstructured.UnstructuredJSONScheme.Decode(data, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("not a Kubernetes object in JSON: %w", err)
	}
	switch obj := decoded.(type) {
	case *unstructured.Unstructured:
		return []*unstructured.Unstructured{obj}, nil
	case *unstructured.UnstructuredList:
		items := make([]*unstructured.Unstructured, len(obj.Items))
		for i := range obj.Items {
			items[i] = &obj.Items[i]
		}
		return items, nil
	default:
		return nil, fmt.Errorf("unexpected %T", runtime.Object(decoded))
	}
}

// name is the object as Flux's messages name it: <kind>/<namespace>/<name>.
func name(obj *unstructured.Unstructured) string {
	if ns := obj.GetNamespace(); ns != "" {
		return obj.GetKind() + "/" + ns + "/" + obj.GetName()
	}
	return obj.GetKind() + "/" + obj.GetName()
}
