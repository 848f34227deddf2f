package storecmd

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/rotor-dev/rotor/internal/cli"
	"github.com/rotor-dev/rotor/store"
)

// minPruneAge keeps prune away from what the CA still uses: a revocation
// must stay on the CRL until its certificate expires, and the newest
// refusals feed the refusal budget.
const minPruneAge = 24 * time.Hour

// runPrune deletes the audit rows older than --older-than from the oldest
// end of the chain, in bounded batches; see store.Store.Prune.
func runPrune(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var (
		common Flags
		age    cli.Age
		batch  int
		dry    bool
		reason string
	)
	f := NewFlagSet("prune", stderr)
	common.Register(f, "directory of the development CA's SQLite database", true)
	f.Var(&age, "older-than", "delete certificates expired, and refusals and admin actions made, longer ago than this: 90d, 2160h (required, at least 24h)")
	f.IntVar(&batch, "batch", 1000, "chain places deleted per transaction: other writers wait for at most one batch")
	f.BoolVar(&dry, "dry-run", false, "count what would be deleted, delete nothing")
	f.StringVar(&reason, "reason", "retention", "why, for the audit")
	if err := common.Parse(f, args, stderr); err != nil {
		return err
	}
	if _, given := f.Given("older-than"); !given {
		return cli.Usagef("--older-than is required, e.g. --older-than 90d")
	}
	if d := time.Duration(age); d < minPruneAge {
		return cli.Usagef("--older-than %s: at least 24h, so revocations stay on the CRL until their certificates expire", age.String())
	}
	if batch < 1 || batch > 100000 {
		return cli.Usagef("--batch %d: want 1 to 100000", batch)
	}
	st, err := common.OpenStore(ctx, store.Options{})
	if err != nil {
		return err
	}
	defer st.Close()
	now := time.Now()
	before := now.Add(-time.Duration(age))
	res, err := st.Prune(ctx, before, store.PruneOptions{Batch: batch, DryRun: dry, Action: cliAction(now, reason)})
	if err != nil {
		return err
	}
	switch {
	case res.To == res.From:
		_, err = fmt.Fprintf(stdout, "nothing to prune: the oldest row kept (after chain place %d) is newer than %s\n",
			res.From, before.UTC().Format(time.RFC3339))
	case dry:
		_, err = fmt.Fprintf(stdout, "would prune audit chain places %d-%d: %s\n", res.From+1, res.To, res.Describe())
	default:
		_, err = fmt.Fprintf(stdout, "pruned audit chain places %d-%d in %d batches: %s\n", res.From+1, res.To,
			res.Batches, res.Describe())
	}
	return err
}
