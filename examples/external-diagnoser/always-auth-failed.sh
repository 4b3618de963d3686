#!/bin/sh
# A deliberately wrong external diagnoser for `maillab verify --diagnoser`:
# it blames the password whatever happened. Verify reports it as passing
# exactly the scenarios whose root cause is AUTH_FAILED.
#
# The contract: the settings JSON's path is the last argument (and in
# $MAILLAB_SETTINGS); print the diagnose JSON, at least "root_cause";
# exit 0 (healthy) or 1 (a fault was found). Optionally a "findings" list,
# [{"code":"X"}] for other causes found, [{"code":"X","unverifiable":"why"}]
# for causes it could not check (compound scenarios need them).
settings="${1:-$MAILLAB_SETTINGS}"
if [ ! -r "$settings" ]; then
	echo "always-auth-failed: cannot read settings file '$settings'" >&2
	exit 2
fi
echo '{"root_cause":"AUTH_FAILED","summary":"the password is wrong (this diagnoser always says so)"}'
exit 1
