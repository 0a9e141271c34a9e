// Command sumdb-server is a real Go checksum database for tests: golang.org/x/mod/sumdb's
// server and test store (from Debian's golang-golang-x-mod-dev) over a GOPROXY directory
// tree, signing with a key made from -seed. It prints one line,
//   listening http://ADDR vkey=NAME+HASH+KEY
// and serves until killed. Records are made on first lookup, from the tree's .mod and .zip
// files (the go.sum lines the go command would write).
//
//	-fork N  first logs N records of a module nobody has, so the same key signs a tree with
//	         another history (a fork of a run without -fork).
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb"
	"golang.org/x/mod/sumdb/dirhash"
	"golang.org/x/mod/sumdb/note"
)

type seeded struct{ b byte }

func (s seeded) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = s.b
	}
	return len(p), nil
}

func main() {
	corpus := flag.String("corpus", "", "GOPROXY directory tree")
	name := flag.String("name", "sum.test.example", "database name")
	listen := flag.String("listen", "127.0.0.1:0", "address")
	seed := flag.Int("seed", 7, "key seed byte")
	fork := flag.Int("fork", 0, "records logged first, for a forked history")
	flag.Parse()

	skey, vkey, err := note.GenerateKey(seeded{byte(*seed)}, *name)
	must(err)
	gosum := func(path, vers string) ([]byte, error) {
		esc, err := module.EscapePath(path)
		if err != nil {
			return nil, err
		}
		escv, err := module.EscapeVersion(vers)
		if err != nil {
			return nil, err
		}
		base := filepath.Join(*corpus, esc, "@v", escv)
		mod, err := os.ReadFile(base + ".mod")
		if err != nil {
			return nil, fmt.Errorf("%s@%s: not found", path, vers)
		}
		modHash, err := dirhash.Hash1([]string{"go.mod"}, func(string) (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(mod)), nil
		})
		must(err)
		var out bytes.Buffer
		if _, err := os.Stat(base + ".zip"); err == nil {
			zipHash, err := dirhash.HashZip(base+".zip", dirhash.Hash1)
			if err != nil {
				return nil, err
			}
			fmt.Fprintf(&out, "%s %s %s\n", path, vers, zipHash)
		}
		fmt.Fprintf(&out, "%s %s/go.mod %s\n", path, vers, modHash)
		return out.Bytes(), nil
	}
	store := sumdb.NewTestServer(skey, func(path, vers string) ([]byte, error) {
		if path == "fork.invalid/padding" {
			return []byte(fmt.Sprintf("%s %s/go.mod h1:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n", path, vers)), nil
		}
		return gosum(path, vers)
	})
	for i := 0; i < *fork; i++ {
		_, err := store.Lookup(nil, module.Version{Path: "fork.invalid/padding", Version: fmt.Sprintf("v0.0.%d", i)})
		must(err)
	}
	l, err := net.Listen("tcp", *listen)
	must(err)
	fmt.Printf("listening http://%s vkey=%s\n", l.Addr(), vkey)
	os.Stdout.Sync()
	must(http.Serve(l, sumdb.NewServer(store)))
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "sumdb-server:", err)
		os.Exit(1)
	}
}
