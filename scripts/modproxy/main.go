//go:build ignore

// Command modproxy adds one version of one module to a file:// module proxy
// folder (the layout GOPROXY reads: module/@v/list, .info, .mod, .zip), from
// a tar of a whole repository tree on standard input, as `git archive`
// writes it. scripts/importcheck.sh runs it to let importers outside the
// repository fetch this checkout's modules as users fetch published ones.
//
//	git archive --format=tar REV | go run scripts/modproxy/main.go -proxy DIR -version V -time T [-subdir redisstore]
//
// The zip holds what the go command puts in a zip it makes from a
// repository (cmd/go's codeRepo.Zip, then golang.org/x/mod/zip.Create), so
// that its hash, and with it the go.sum lines it gives, is the one users will
// get through the public proxy: regular files only, no directory entries,
// none of a nested module's files, no .hg_archival.txt, and for a module in a
// subdirectory that has no LICENSE, the repository's. Vendored packages,
// which have more rules, are refused rather than guessed at.
//
// It uses the standard library only, so it runs in the repository's
// workspace without a dependency; the ignore build tag keeps it out of
// `go build ./...` and out of the root module's packages.
package main

import (
	"archive/tar"
	"archive/zip"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

func main() {
	proxy := flag.String("proxy", "", "proxy folder to add the version to")
	version := flag.String("version", "", "the version, e.g. a pseudo-version v0.0.0-20260102150405-abcdefabcdef")
	when := flag.String("time", "", "the commit time, RFC 3339")
	subdir := flag.String("subdir", "", "the module's folder in the repository, empty for the root")
	flag.Parse()
	if *proxy == "" || *version == "" || *when == "" || flag.NArg() != 0 {
		flag.Usage()
		os.Exit(2)
	}
	mod, err := add(*proxy, *subdir, *version, *when, os.Stdin)
	if err != nil {
		fmt.Fprintf(os.Stderr, "modproxy: %s@%s: %v\n", strings.TrimSuffix(*subdir+"/", "/"), *version, err)
		os.Exit(1)
	}
	fmt.Println(mod + "@" + *version)
}

// add writes version of the module in subdir of the repository tar r into
// the proxy folder and returns the module's path.
func add(proxy, subdir, version, when string, r io.Reader) (string, error) {
	t, err := time.Parse(time.RFC3339, when)
	if err != nil {
		return "", fmt.Errorf("-time: %v", err)
	}
	files, err := readTree(r)
	if err != nil {
		return "", err
	}
	prefix := ""
	if subdir = strings.Trim(subdir, "/"); subdir != "" {
		prefix = subdir + "/"
	}
	gomod, ok := files[prefix+"go.mod"]
	if !ok {
		return "", fmt.Errorf("no go.mod in %q", subdir)
	}
	mod := modulePath(gomod)
	if mod == "" {
		return "", errors.New("go.mod has no module directive")
	}

	// The module's files, by path inside the module.
	own := map[string][]byte{}
	for name, data := range files {
		if rel, ok := strings.CutPrefix(name, prefix); ok {
			own[rel] = data
		}
	}
	if _, ok := own["LICENSE"]; !ok && subdir != "" {
		if data, ok := files["LICENSE"]; ok {
			own["LICENSE"] = data
		}
	}
	// A folder below the module's root that holds a go.mod is another module.
	nested := map[string]bool{}
	for name := range own {
		if dir, base := path.Split(name); strings.EqualFold(base, "go.mod") && dir != "" {
			nested[dir] = true
		}
	}
	inNested := func(name string) bool {
		for dir := path.Dir(name); dir != "."; dir = path.Dir(dir) {
			if nested[dir+"/"] {
				return true
			}
		}
		return false
	}
	var names []string
	for name := range own {
		switch {
		case inNested(name), name == ".hg_archival.txt":
			continue
		case name == "vendor" || strings.HasPrefix(name, "vendor/") || strings.Contains(name, "/vendor/"):
			return "", fmt.Errorf("%s: vendored files are not handled", name)
		}
		names = append(names, name)
	}
	slices.Sort(names)

	dir := filepath.Join(proxy, filepath.FromSlash(escape(mod)), "@v")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return "", err
	}
	base := filepath.Join(dir, escape(version))
	if err := writeZip(base+".zip", mod+"@"+version+"/", names, own); err != nil {
		return "", err
	}
	if err := os.WriteFile(base+".mod", gomod, 0o666); err != nil {
		return "", err
	}
	info, err := json.Marshal(struct {
		Version string
		Time    time.Time
	}{version, t.UTC()})
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(base+".info", info, 0o666); err != nil {
		return "", err
	}
	list, err := os.OpenFile(filepath.Join(dir, "list"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o666)
	if err != nil {
		return "", err
	}
	if _, err := fmt.Fprintln(list, version); err != nil {
		list.Close()
		return "", err
	}
	return mod, list.Close()
}

// readTree reads the regular files of a tar; symbolic links, which the
// go command leaves out of module zips, and folders are skipped.
func readTree(r io.Reader) (map[string][]byte, error) {
	files := map[string][]byte{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading the tar: %v", err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return nil, fmt.Errorf("reading %s from the tar: %v", h.Name, err)
		}
		files[h.Name] = data
	}
}

func writeZip(file, prefix string, names []string, data map[string][]byte) error {
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	zw := zip.NewWriter(f)
	for _, name := range names {
		w, err := zw.Create(prefix + name)
		if err != nil {
			f.Close()
			return err
		}
		if _, err := w.Write(data[name]); err != nil {
			f.Close()
			return err
		}
	}
	if err := zw.Close(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// modulePath returns the path in a go.mod's module directive.
func modulePath(gomod []byte) string {
	for line := range strings.Lines(string(gomod)) {
		if i := strings.Index(line, "//"); i >= 0 {
			line = line[:i]
		}
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "module"); ok && rest != "" && (rest[0] == ' ' || rest[0] == '\t') {
			return strings.Trim(strings.TrimSpace(rest), `"`)
		}
	}
	return ""
}

// escape writes a module path or version as the proxy protocol names it:
// each upper-case letter as '!' and its lower case.
func escape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if 'A' <= r && r <= 'Z' {
			b.WriteByte('!')
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}
