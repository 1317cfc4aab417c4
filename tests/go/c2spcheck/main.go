// Command c2spcheck checks Countersign's checkpoints with the Go checksum
// database's own packages (golang.org/x/mod/sumdb/note and .../tlog), so the
// test suite has a verifier no one on the project wrote.
//
//	c2spcheck open LOG_VKEY [WITNESS_VKEY...] < checkpoint
//	    note.Open with the log's vkey; prints the note text, then one line
//	    "cosigned NAME TIME" per witness cosignature (c2sp.org/tlog-cosignature,
//	    Ed25519, type 0x04) that verifies. Exit 1 on any failure.
//	c2spcheck consistency OLD_SIZE OLD_ROOT NEW_SIZE NEW_ROOT [PROOF_HASH...]
//	    tlog.CheckTree on base64 hashes. Exit 1 if the proof does not verify.
//
// Built offline in GOPATH mode against Debian's golang-golang-x-mod-dev.
package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

func fail(format string, args ...interface{}) {
	fmt.Printf("FAIL: "+format+"\n", args...)
	os.Exit(1)
}

type cosigner struct {
	name string
	id   uint32
	key  ed25519.PublicKey
}

func parseCosigner(vkey string) cosigner {
	parts := strings.SplitN(vkey, "+", 3)
	if len(parts) != 3 {
		fail("bad witness vkey")
	}
	raw, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil || len(raw) != 33 || raw[0] != 0x04 {
		fail("witness vkey is not an Ed25519 cosignature/v1 key")
	}
	h := sha256.Sum256(append([]byte(parts[0]+"\n"), raw...))
	id := binary.BigEndian.Uint32(h[:4])
	if fmt.Sprintf("%08x", id) != parts[1] {
		fail("witness vkey hash mismatch")
	}
	return cosigner{parts[0], id, ed25519.PublicKey(raw[1:])}
}

func open(args []string) {
	msg, err := io.ReadAll(os.Stdin)
	if err != nil {
		fail("read: %v", err)
	}
	verifier, err := note.NewVerifier(args[0])
	if err != nil {
		fail("log vkey: %v", err)
	}
	n, err := note.Open(msg, note.VerifierList(verifier))
	if err != nil {
		fail("note.Open: %v", err)
	}
	fmt.Print(n.Text)
	for _, vkey := range args[1:] {
		w := parseCosigner(vkey)
		for _, sig := range n.UnverifiedSigs {
			if sig.Name != w.name || sig.Hash != w.id {
				continue
			}
			raw, err := base64.StdEncoding.DecodeString(sig.Base64)
			if err != nil || len(raw) != 4+8+64 {
				fail("cosignature of %s malformed", w.name)
			}
			t := binary.BigEndian.Uint64(raw[4:12])
			var m bytes.Buffer
			fmt.Fprintf(&m, "cosignature/v1\ntime %d\n%s", t, n.Text)
			if !ed25519.Verify(w.key, m.Bytes(), raw[12:]) {
				fail("cosignature of %s does not verify", w.name)
			}
			fmt.Printf("cosigned %s %d\n", w.name, t)
		}
	}
}

func hash(s string) tlog.Hash {
	h, err := tlog.ParseHash(s)
	if err != nil {
		fail("bad hash %q", s)
	}
	return h
}

func size(s string) int64 {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		fail("bad size %q", s)
	}
	return n
}

func consistency(args []string) {
	var proof tlog.TreeProof
	for _, s := range args[4:] {
		proof = append(proof, hash(s))
	}
	if err := tlog.CheckTree(proof, size(args[2]), hash(args[3]), size(args[0]), hash(args[1])); err != nil {
		fail("tlog.CheckTree: %v", err)
	}
	fmt.Println("consistent")
}

func main() {
	if len(os.Args) >= 3 && os.Args[1] == "open" {
		open(os.Args[2:])
	} else if len(os.Args) >= 6 && os.Args[1] == "consistency" {
		consistency(os.Args[2:])
	} else {
		fmt.Println("usage: c2spcheck open LOG_VKEY [WITNESS_VKEY...] | consistency OLD_SIZE OLD_ROOT NEW_SIZE NEW_ROOT [PROOF...]")
		os.Exit(2)
	}
}
