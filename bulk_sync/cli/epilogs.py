"""CLI, epilogs: the examples printed under each command's --help."""

from __future__ import annotations

EPILOG_TOP = """\
examples:
  bulk-sync run example_data/engagements.csv -m mappings/engagements.yaml --sandbox   # a rehearsal
  bulk-sync init-mapping export.csv -o mappings/mine.yaml       # a starter mapping from the headers
  bulk-sync validate export.csv -m mappings/mine.yaml           # check every row; send nothing
  bulk-sync run export.csv -m mappings/mine.yaml                # sync (token in $SIRO_API_TOKEN)
  bulk-sync COMMAND --help                                      # each command's flags and examples

exit codes: 0 all rows synced, 1 some rows did not sync, 2 could not start, 3 aborted mid-run
"""


EPILOG_COMPLETION = """\
example:
  bulk-sync completion bash > ~/.local/share/bash-completion/completions/bulk-sync
  bulk-sync completion zsh > "${fpath[1]}/_bulk-sync"
  bulk-sync completion fish > ~/.config/fish/completions/bulk-sync.fish
"""


EPILOG_RUN = """\
example:
  export SIRO_API_TOKEN=...            # or --token-file /etc/bulk_sync/token
  bulk-sync run export.csv --mapping mappings/engagements.yaml
  bulk-sync run example_data/engagements.csv --mapping mappings/engagements.yaml --sandbox
  bulk-sync run export.xlsx --sheet '*' --profile nightly --report-xlsx --summary-json last-run.json
  bulk-sync run march.csv -m m.yaml --mirror --window 2026-03-01..2026-03-31 --dry-run  # what would go
  bulk-sync run march.csv -m m.yaml --mirror --window 2026-03-01..2026-03-31   # CRM deletes too
  bulk-sync run nightly.csv --profile nightly --mirror    # the profile's mirror_window = "-7d..+30d"

exit codes: 0 all rows synced or unchanged, 1 some rows did not sync (see the report),
            2 could not start, or held (drift, mirror guards): nothing sent or deleted,
            3 aborted mid-run (token refused, SIRO down, signal)
"""


EPILOG_RETRY = """\
example:
  bulk-sync run export.csv --mapping m.yaml --report reports/nightly.csv     # some rows fail
  bulk-sync retry reports/nightly.csv --mapping m.yaml                     # resend exactly those
"""


EPILOG_VALIDATE = """\
what it does: reads every row, maps it and checks the payload against SIRO's schema, exactly as
`run` does; sends nothing to SIRO and needs no token. With a token ($SIRO_API_TOKEN or
--token-file) it GETs SIRO's users once, for the rep check (--no-rep-check: no call at all).
With a state file (--state, or run's default one when it exists) it predicts what a run would
do: new, changed, unchanged (and with --mirror, removed); it records nothing in the state
(a state file of an older bulk_sync is upgraded to this one's format on opening).
Its only side effects are the files it writes: the report (--report, or under --report-dir),
the error file beside it when rows are invalid, the summary JSON (beside the report, or
--summary-json), --report-xlsx and --log-file.
It never posts a notification webhook.

example:
  bulk-sync validate export.xlsx --sheet Events --mapping mappings/engagements.yaml --show 2
  bulk-sync validate report.csv --delimiter ';' --encoding cp1252 -m m.yaml --max-failures 2%
"""


EPILOG_WATCH = """\
example:
  bulk-sync watch /srv/dropbox --mapping mappings/engagements.yaml          # runs until SIGTERM
  bulk-sync watch /srv/dropbox --config bulk_sync.toml --once               # cron: what is there

  Files dropped in INBOX go to INBOX/processing/ once complete, then to INBOX/done/ or
  INBOX/failed/ with their reports and error file. Routing rules: [[watch.routes]] in the config.
exit codes: 0 stopped normally (--once: every file filed in done/), 1 some files went to failed/,
            2 could not start
"""


EPILOG_INIT = """\
example:
  bulk-sync init-mapping exports/meetings.csv -o mappings/meetings.yaml
  bulk-sync validate exports/meetings.csv -m mappings/meetings.yaml      # then fix what it says
"""


EPILOG_SANDBOX = """\
example:
  SIRO_API_TOKEN=test-token bulk-sync sandbox --port 8787 --error-rate 0.1
  # then, in another terminal:
  SIRO_API_TOKEN=test-token bulk-sync run file.csv --mapping m.yaml --base-url http://127.0.0.1:8787
"""


EPILOG_DELETE = """\
Each externalId is deleted with DELETE /v1/integrations/engagements/{id}?idType=external.
The file holds one externalId a line, or is a CSV with an external_id or externalId
column; a bulk_sync report gives only its rows synced or unchanged (--all-rows: every
row). Without --yes it asks before deleting anything. The state file `run` uses forgets
each id as SIRO confirms it gone, so the next run sends that row again.

example:
  bulk-sync delete --external-ids cancelled.txt --dry-run       # what would go; sends nothing
  bulk-sync delete --external-ids cancelled.txt                 # asks, then deletes
  bulk-sync delete --external-ids reports/old.csv --yes --token-file /etc/bulk_sync/token
"""
