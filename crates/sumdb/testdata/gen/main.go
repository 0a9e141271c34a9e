// Command gen writes the test vectors of crates/sumdb (vectors.json) with the Go
// implementation of golang.org/x/mod/sumdb (note, tlog), so the Rust code is checked against
// the reference, not against itself (crates/sumdb/tests/vectors_from_go.rs runs it and
// compares). Needs golang-go and golang-golang-x-mod-dev; by hand:
//   cd crates/sumdb/testdata/gen && GO111MODULE=off GOPATH=/usr/share/gocode go run main.go > ../vectors.json
package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

type hashes map[int64]tlog.Hash

func (h hashes) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		v, ok := h[x]
		if !ok {
			return nil, fmt.Errorf("missing hash %d", x)
		}
		out[i] = v
	}
	return out, nil
}

type recordProof struct {
	Tree   int64    `json:"tree"`
	Record int64    `json:"record"`
	Proof  []string `json:"proof"`
}

type treeProof struct {
	Old   int64    `json:"old"`
	New   int64    `json:"new"`
	Proof []string `json:"proof"`
}

type tile struct {
	Path string `json:"path"`
	Data string `json:"data"`
}

type vectors struct {
	Vkey         string            `json:"vkey"`
	Skey         string            `json:"skey"`
	OtherVkey    string            `json:"other_vkey"`
	Text         string            `json:"text"`
	Signed       string            `json:"signed"`
	SignedByBoth string            `json:"signed_by_both"`
	Records      int64             `json:"records"`
	TreeHashes   map[string]string `json:"tree_hashes"`
	TreeNotes    map[string]string `json:"tree_notes"`
	RecordProofs []recordProof     `json:"record_proofs"`
	TreeProofs   []treeProof       `json:"tree_proofs"`
	Tiles        []tile            `json:"tiles"`
	StoredIndex  [][3]int64        `json:"stored_index"`
}

func b64(h []tlog.Hash) []string {
	out := []string{}
	for _, x := range h {
		out = append(out, x.String())
	}
	return out
}

func main() {
	skey, vkey, err := note.GenerateKey(zeroReader{}, "sum.test.example")
	must(err)
	oskey, ovkey, err := note.GenerateKey(oneReader{}, "other.test.example")
	must(err)
	signer, err := note.NewSigner(skey)
	must(err)
	other, err := note.NewSigner(oskey)
	must(err)
	text := "go.sum database tree\n5\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"
	signed, err := note.Sign(&note.Note{Text: text}, signer)
	must(err)
	both, err := note.Sign(&note.Note{Text: text}, signer, other)
	must(err)

	v := vectors{Vkey: vkey, Skey: skey, OtherVkey: ovkey, Text: text, Signed: string(signed), SignedByBoth: string(both),
		TreeHashes: map[string]string{}, TreeNotes: map[string]string{}}
	const n = 1000
	v.Records = n
	stored := hashes{}
	var next int64
	for i := int64(0); i < n; i++ {
		data := []byte(fmt.Sprintf("record %d\n", i))
		hs, err := tlog.StoredHashes(i, data, stored)
		must(err)
		for _, h := range hs {
			stored[next] = h
			next++
		}
	}
	for _, size := range []int64{1, 2, 3, 7, 8, 9, 255, 256, 257, 513, 1000} {
		th, err := tlog.TreeHash(size, stored)
		must(err)
		v.TreeHashes[fmt.Sprint(size)] = th.String()
		msg, err := note.Sign(&note.Note{Text: string(tlog.FormatTree(tlog.Tree{N: size, Hash: th}))}, signer)
		must(err)
		v.TreeNotes[fmt.Sprint(size)] = string(msg)
	}
	for _, c := range [][2]int64{{1, 0}, {2, 1}, {3, 2}, {7, 3}, {8, 0}, {9, 8}, {257, 100}, {1000, 0}, {1000, 511}, {1000, 999}} {
		p, err := tlog.ProveRecord(c[0], c[1], stored)
		must(err)
		v.RecordProofs = append(v.RecordProofs, recordProof{c[0], c[1], b64(p)})
	}
	for _, c := range [][2]int64{{1, 1}, {1, 2}, {3, 7}, {4, 8}, {7, 9}, {100, 257}, {256, 1000}, {999, 1000}} {
		p, err := tlog.ProveTree(c[1], c[0], stored)
		must(err)
		v.TreeProofs = append(v.TreeProofs, treeProof{c[0], c[1], b64(p)})
	}
	// Tiles of height 8 for the 1000-record tree, as a server would publish them.
	// Every full tile, and the partial tiles of the final tree (not every width on the way).
	var tiles []tlog.Tile
	for _, t := range tlog.NewTiles(8, 0, n) {
		if t.W == 1<<8 {
			tiles = append(tiles, t)
		}
	}
	for _, t := range tlog.NewTiles(8, n-1, n) {
		if t.W < 1<<8 {
			tiles = append(tiles, t)
		}
	}
	for _, t := range tiles {
		data, err := tlog.ReadTileData(t, stored)
		must(err)
		v.Tiles = append(v.Tiles, tile{t.Path(), base64.StdEncoding.EncodeToString(data)})
	}
	for _, c := range [][2]int64{{0, 0}, {0, 1}, {1, 0}, {0, 5}, {2, 3}, {0, 999}, {3, 100}, {8, 2}} {
		v.StoredIndex = append(v.StoredIndex, [3]int64{c[0], c[1], tlog.StoredHashIndex(int(c[0]), c[1])})
	}
	out, err := json.MarshalIndent(v, "", " ")
	must(err)
	os.Stdout.Write(append(out, '\n'))
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 0
	}
	return len(p), nil
}

type oneReader struct{}

func (oneReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 1
	}
	return len(p), nil
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}
