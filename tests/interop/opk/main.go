// Interop harness with the OpenPubkey reference implementation, run only on GitHub (.github/workflows/
// interop.yml): no Go toolchain or module proxy exists where the rest of the suite runs.
//
//	opk-interop verify HINT.json PAE.bin   the reference verifier checks a PK Token and OSM made by mlsec
//	opk-interop make OUTDIR                the reference client makes a PK Token and an OSM for mlsec to check
package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/openpubkey/openpubkey/client"
	"github.com/openpubkey/openpubkey/pktoken"
	"github.com/openpubkey/openpubkey/providers"
	"github.com/openpubkey/openpubkey/verifier"
)

func main() {
	var err error
	switch {
	case len(os.Args) == 4 && os.Args[1] == "verify":
		err = verifyOurs(os.Args[2], os.Args[3])
	case len(os.Args) == 3 && os.Args[1] == "make":
		err = makeTheirs(os.Args[2])
	default:
		err = fmt.Errorf("usage: opk-interop verify HINT.json PAE.bin | make OUTDIR")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "opk-interop:", err)
		os.Exit(1)
	}
}

func verifyOurs(hintPath, paePath string) error {
	raw, err := os.ReadFile(hintPath)
	if err != nil {
		return err
	}
	var hint struct {
		Pkt string `json:"pkt"`
		Osm string `json:"osm"`
	}
	if err := json.Unmarshal(raw, &hint); err != nil {
		return err
	}
	pkt, err := pktoken.NewFromCompact([]byte(hint.Pkt))
	if err != nil {
		return fmt.Errorf("reading mlsec's compact PK Token: %w", err)
	}
	op := providers.NewGithubOp("", "") // verification only: its VerifyIDToken discovers GitHub's JWKS
	v, err := verifier.New(op)
	if err != nil {
		return err
	}
	if err := v.VerifyPKToken(context.Background(), pkt, verifier.GQOnly()); err != nil {
		return fmt.Errorf("reference verifier refused mlsec's PK Token: %w", err)
	}
	pae, err := os.ReadFile(paePath)
	if err != nil {
		return err
	}
	parts := strings.Split(hint.Osm, ".")
	if len(parts) != 3 || parts[1] != "" {
		return fmt.Errorf("mlsec's OSM is not detached")
	}
	attached := parts[0] + "." + base64.RawURLEncoding.EncodeToString(pae) + "." + parts[2]
	msg, err := pkt.VerifySignedMessage([]byte(attached))
	if err != nil {
		return fmt.Errorf("reference verifier refused mlsec's OSM: %w", err)
	}
	if !bytes.Equal(msg, pae) {
		return fmt.Errorf("the OSM payload is not the DSSE PAE")
	}
	fmt.Println("opk-interop: the reference verifier accepts mlsec's PK Token and OSM")
	return nil
}

func makeTheirs(out string) error {
	op, err := providers.NewGithubOpFromEnvironment()
	if err != nil {
		return err
	}
	c, err := client.New(op)
	if err != nil {
		return err
	}
	pkt, err := c.Auth(context.Background())
	if err != nil {
		return err
	}
	compact, err := pkt.Compact()
	if err != nil {
		return err
	}
	message := []byte("signed by the OpenPubkey reference client")
	osm, err := pkt.NewSignedMessage(message, c.GetSigner())
	if err != nil {
		return err
	}
	for name, data := range map[string][]byte{"pkt.compact": compact, "osm.jws": osm, "message.txt": message} {
		if err := os.WriteFile(filepath.Join(out, name), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}
