// Command trivy-db builds an offline Trivy vulnerability DB from YAML fixtures.
//
// It writes <out>/db/trivy.db (BoltDB) and <out>/db/metadata.json, the layout Trivy
// reads from its --cache-dir. The fixtures use the github.com/aquasecurity/bolt-fixtures
// format, loaded the same way as aquasecurity/trivy's internal/dbtest/db.go
// (fixtures.New + Load + Close), so Trivy's own integration-test fixtures
// (integration/testdata/fixtures/db/*.yaml) are a valid reference.
//
// Usage (the module lives in scripts/trivy-db, so run it from there or with go -C):
//
//	go -C scripts/trivy-db run . --out "$PWD/.local/trivy-cache"
//	scripts/trivy-db/build-db.sh            # same, with repo-relative defaults
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	fixtures "github.com/aquasecurity/bolt-fixtures"
	bolt "go.etcd.io/bbolt"
)

// schemaVersion is trivy-db's db.SchemaVersion (pkg/db/db.go), the value Trivy
// checks in metadata.json ("Version"). It has been 2 since Trivy v0.23; Trivy
// 0.74-0.76 (trivy-db v0.0.0-20260813095258-0e0340a01b57) still expects 2.
const schemaVersion = 2

// metadata mirrors trivy-db pkg/metadata.Metadata.
type metadata struct {
	Version      int `json:",omitempty"`
	NextUpdate   time.Time
	UpdatedAt    time.Time
	DownloadedAt time.Time
}

func main() {
	out := flag.String("out", "", "Trivy cache dir to write (db/trivy.db and db/metadata.json go under it); required")
	advDir := flag.String("advisories", "", "directory with *.yaml fixtures (default: the advisories/ folder next to this program)")
	updatedAt := flag.String("updated-at", "", "RFC3339 time for UpdatedAt/DownloadedAt (default: now)")
	flag.Parse()

	if err := run(*out, *advDir, *updatedAt); err != nil {
		fmt.Fprintln(os.Stderr, "trivy-db:", err)
		os.Exit(1)
	}
}

func run(out, advDir, updatedAt string) error {
	if out == "" {
		return fmt.Errorf("--out is required (e.g. --out .local/trivy-cache)")
	}
	if advDir == "" {
		advDir = defaultAdvisoriesDir()
	}
	files, err := filepath.Glob(filepath.Join(advDir, "*.yaml"))
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return fmt.Errorf("no *.yaml fixtures in %s", advDir)
	}
	sort.Strings(files)

	now := time.Now().UTC().Truncate(time.Second)
	if updatedAt != "" {
		if now, err = time.Parse(time.RFC3339, updatedAt); err != nil {
			return fmt.Errorf("--updated-at: %w", err)
		}
	}

	dbDir := filepath.Join(out, "db")
	if err := os.MkdirAll(dbDir, 0o755); err != nil {
		return err
	}

	// Build into a temp file and rename, so a half-written DB never replaces a good one
	// (and so stale buckets from an earlier run never survive: bolt-fixtures appends).
	tmp := filepath.Join(dbDir, "trivy.db.tmp")
	_ = os.Remove(tmp)
	loader, err := fixtures.New(tmp, files)
	if err != nil {
		return fmt.Errorf("open %s: %w", tmp, err)
	}
	if err := loader.Load(); err != nil {
		loader.Close()
		return fmt.Errorf("load fixtures: %w", err)
	}
	if err := loader.Close(); err != nil {
		return err
	}
	summary, err := summarize(tmp)
	if err != nil {
		return fmt.Errorf("check %s: %w", tmp, err)
	}
	if err := os.Chmod(tmp, 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dbDir, "trivy.db")); err != nil {
		return err
	}

	meta := metadata{
		Version:      schemaVersion,
		NextUpdate:   time.Date(2099, 12, 31, 0, 0, 0, 0, time.UTC),
		UpdatedAt:    now,
		DownloadedAt: now, // non-zero: Trivy does not treat the DB as corrupted
	}
	b, err := json.Marshal(meta)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dbDir, "metadata.json"), b, 0o644); err != nil {
		return err
	}

	fmt.Printf("wrote %s and metadata.json (schema %d) from %d fixture file(s) in %s\n",
		filepath.Join(dbDir, "trivy.db"), schemaVersion, len(files), advDir)
	for _, line := range summary {
		fmt.Println("  " + line)
	}
	return nil
}

// summarize lists the platform -> package -> advisory entries and checks that every
// advisory has details in the "vulnerability" bucket and is valid JSON.
func summarize(path string) ([]string, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return nil, err
	}
	defer db.Close()

	var lines []string
	err = db.View(func(tx *bolt.Tx) error {
		vulns := tx.Bucket([]byte("vulnerability"))
		return tx.ForEach(func(name []byte, platform *bolt.Bucket) error {
			switch string(name) {
			case "vulnerability", "vulnerability-id", "data-source":
				return nil
			}
			return platform.ForEachBucket(func(pkg []byte) error {
				return platform.Bucket(pkg).ForEach(func(id, v []byte) error {
					var adv struct {
						FixedVersion string
						Severity     int
					}
					if err := json.Unmarshal(v, &adv); err != nil {
						return fmt.Errorf("%s/%s/%s: %w", name, pkg, id, err)
					}
					if vulns == nil || vulns.Get(id) == nil {
						return fmt.Errorf("%s/%s/%s: no entry in the vulnerability bucket", name, pkg, id)
					}
					var detail struct{ Severity string }
					if err := json.Unmarshal(vulns.Get(id), &detail); err != nil {
						return fmt.Errorf("vulnerability/%s: %w", id, err)
					}
					fixed := adv.FixedVersion
					if fixed == "" {
						fixed = "(unfixed)"
					}
					lines = append(lines, fmt.Sprintf("%-10s %-10s %-22s %-8s fixed: %s",
						name, pkg, id, detail.Severity, fixed))
					return nil
				})
			})
		})
	})
	return lines, err
}

// defaultAdvisoriesDir finds scripts/trivy-db/advisories: ./advisories when run from the
// module dir, scripts/trivy-db/advisories from the repo root, else next to the source file.
func defaultAdvisoriesDir() string {
	for _, d := range []string{"advisories", filepath.Join("scripts", "trivy-db", "advisories")} {
		if st, err := os.Stat(d); err == nil && st.IsDir() {
			return d
		}
	}
	if _, file, _, ok := runtime.Caller(0); ok && !strings.HasPrefix(file, "_") {
		return filepath.Join(filepath.Dir(file), "advisories")
	}
	return "advisories"
}
