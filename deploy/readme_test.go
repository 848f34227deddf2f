package deploy

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"
)

// documented are the commands whose every flag the README's settings
// tables list, so a flag a manifest or a user needs is never only in
// --help.
var documented = []string{"rotor-ca serve", "rotor-agent"}

// TestREADMESettings: every flag of rotor-ca serve and rotor-agent (aliases
// too) is in a row of one of the README's tables, written `--name`.
func TestREADMESettings(t *testing.T) {
	t.Parallel()
	c := loadCatalog(t)
	readme, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	inTable := map[string]bool{}
	tableRow, flagName := regexp.MustCompile(`(?m)^\|.*\|$`), regexp.MustCompile("`--([a-z0-9-]+)")
	for _, row := range tableRow.FindAllString(string(readme), -1) {
		for _, m := range flagName.FindAllStringSubmatch(row, -1) {
			inTable[m[1]] = true
		}
	}
	for _, name := range documented {
		var missing []string
		for flag := range c.commands[name].flags {
			if !inTable[flag] && flag != "help" {
				missing = append(missing, "--"+flag)
			}
		}
		slices.Sort(missing)
		if len(missing) > 0 {
			t.Errorf("%s: %d flags are in no README table: %v", name, len(missing), missing)
		}
	}
}
