// cdi-verdict: the reference CDI library's verdict on CDI spec files (a peer for cdi_spec's
// validator, k3s_gpu.cluster tests). Ours; it imports the library's packages and copies none
// of its code.
//
// Usage: cdi-verdict FILE...
//
// Prints one JSON object per line. The first names the library and its version:
//
//	{"library": "tags.cncf.io/container-device-interface", "version": "v1.1.2", "specs_go": "v1.1.1"}
//
// then one per FILE, in the order given:
//
//	{"path": F, "valid": true|false, "error": "<the library's error>", "declared": "0.5.0",
//	 "minimum": "0.5.0", "devices": ["nvidia.com/gpu=0", ...], "panic": "<when the library panicked>"}
//
// "valid" is what cdi.ReadSpec (strict decoding, then the version, vendor, class, device and
// container-edits rules) says. "declared" is the spec's cdiVersion and "minimum" the lowest
// version its fields need (specs.MinimumRequiredVersion), both when the file decodes. A panic
// in the library (it has some, e.g. on a null list item) is caught and reported as "panic"
// with valid false.
// Exit status 0 when every file was judged (valid or not), 2 on bad usage.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime/debug"
	"sort"

	"tags.cncf.io/container-device-interface/pkg/cdi"
	specs "tags.cncf.io/container-device-interface/specs-go"
)

type verdict struct {
	Path     string   `json:"path"`
	Valid    bool     `json:"valid"`
	Error    string   `json:"error,omitempty"`
	Declared string   `json:"declared,omitempty"`
	Minimum  string   `json:"minimum,omitempty"`
	Devices  []string `json:"devices,omitempty"`
	Panic    string   `json:"panic,omitempty"`
}

func moduleVersion(path string) string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	for _, dep := range info.Deps {
		if dep.Path == path {
			if dep.Replace != nil {
				return dep.Replace.Version
			}
			return dep.Version
		}
	}
	return "unknown"
}

func judge(path string) (v verdict) {
	v = verdict{Path: path}
	defer func() {
		if r := recover(); r != nil {
			v.Valid = false
			v.Panic = fmt.Sprint(r)
		}
	}()
	data, err := os.ReadFile(path)
	if err != nil {
		v.Error = err.Error()
		return v
	}
	spec, err := cdi.ReadSpec(path, 0)
	// Decoded again on its own (the library's strict decoder) to report the versions even
	// when the rules refuse the spec.
	if raw, perr := cdi.ParseSpec(data); perr == nil && raw != nil {
		v.Declared = raw.Version
		if minimum, merr := specs.MinimumRequiredVersion(raw); merr == nil {
			v.Minimum = minimum
		}
	}
	if err != nil {
		v.Error = err.Error()
		return v
	}
	v.Valid = true
	for _, d := range spec.Devices {
		v.Devices = append(v.Devices, spec.Kind+"="+d.Name)
	}
	sort.Strings(v.Devices)
	return v
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: cdi-verdict FILE...")
		os.Exit(2)
	}
	out := json.NewEncoder(os.Stdout)
	_ = out.Encode(map[string]string{
		"library":  "tags.cncf.io/container-device-interface",
		"version":  moduleVersion("tags.cncf.io/container-device-interface"),
		"specs_go": moduleVersion("tags.cncf.io/container-device-interface/specs-go"),
	})
	for _, path := range os.Args[1:] {
		_ = out.Encode(judge(path))
	}
}
