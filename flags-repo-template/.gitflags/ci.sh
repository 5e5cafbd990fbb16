#!/bin/sh
# What CI runs on this flag repository, on GitHub Actions
# (.github/workflows/gitflags.yml) and GitLab CI (.gitlab-ci.yml) alike:
#
#   1. gitflags validate .          every problem, as file:line:column: pointer: message
#   2. on a pull or merge request:
#      gitflags diff --format markdown "origin/$BASE...HEAD" > gitflags-diff.md
#                                   what the change does, per environment, risky changes first
#   3. posts gitflags-diff.md as one comment on the pull or merge request,
#      updated in place on every push (found by the marker below).
#
# Needs gitflags, git, curl and jq. The comment is posted with
#   GitHub: GITHUB_TOKEN (the workflow's token, with pull-requests: write), to
#           GITHUB_API_URL, repository GITHUB_REPOSITORY, pull request from
#           GITHUB_REF (refs/pull/<n>/merge), base branch GITHUB_BASE_REF;
#   GitLab: GITLAB_TOKEN (a project access token with the api scope, as a
#           masked CI/CD variable; else CI_JOB_TOKEN, which GitLab may refuse
#           for notes), to CI_API_V4_URL, project CI_PROJECT_ID, merge request
#           CI_MERGE_REQUEST_IID, base branch CI_MERGE_REQUEST_TARGET_BRANCH_NAME.
# A comment that cannot be posted (a pull request from a fork gets a
# read-only token) is a warning: the diff is still in the job log.
#
# Exit status: 0 valid; 1 the change fails validation (after commenting);
# 2 gitflags diff could not run (bad base branch, ...).
set -u

marker='<!-- gitflags-diff -->'
diff_file=gitflags-diff.md
status=0

echo "$ gitflags validate ."
gitflags validate . || status=1

if [ "${GITHUB_ACTIONS:-}" = true ]; then
	platform=github
	base=${GITHUB_BASE_REF:-}
elif [ "${GITLAB_CI:-}" = true ]; then
	platform=gitlab
	base=${CI_MERGE_REQUEST_TARGET_BRANCH_NAME:-}
else
	echo "not on GitHub Actions or GitLab CI: no comment to post"
	exit "$status"
fi
if [ -z "$base" ]; then
	echo "not a pull or merge request: no diff to comment"
	exit "$status"
fi

# The base branch as the remote has it now.
git fetch -q origin "+refs/heads/$base:refs/remotes/origin/$base" || echo "warning: could not fetch origin/$base" >&2

echo "$ gitflags diff --format markdown origin/$base...HEAD > $diff_file"
gitflags diff --format markdown "origin/$base...HEAD" >"$diff_file" 2>gitflags-diff.err
diff_status=$?
cat gitflags-diff.err >&2
if [ "$diff_status" -gt 1 ]; then
	{
		echo "### gitflags diff failed"
		echo
		echo '```'
		cat gitflags-diff.err
		echo '```'
	} >"$diff_file"
	status=2
fi
cat "$diff_file"
if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
	cat "$diff_file" >>"$GITHUB_STEP_SUMMARY"
fi

# The comment: the marker, the report, the commit it is for.
body=$(mktemp)
trap 'rm -f "$body"' EXIT
{
	echo "$marker"
	cat "$diff_file"
	echo
	echo "<sub>Updated for commit $(git rev-parse --short HEAD).</sub>"
} | jq -Rs '{body: .}' >"$body"

# api METHOD URL [BODY-FILE]: prints the response; fails on an HTTP error.
api() {
	if [ "$platform" = github ]; then
		set -- "$@" -H "Authorization: Bearer ${GITHUB_TOKEN:-}" -H "Accept: application/vnd.github+json"
	elif [ -n "${GITLAB_TOKEN:-}" ]; then
		set -- "$@" -H "PRIVATE-TOKEN: $GITLAB_TOKEN"
	else
		set -- "$@" -H "JOB-TOKEN: ${CI_JOB_TOKEN:-}"
	fi
	method=$1 url=$2
	shift 2
	if [ "$method" = GET ]; then
		curl -sS --fail-with-body "$@" "$url"
	else
		data=$1
		shift
		curl -sS --fail-with-body -X "$method" -H "Content-Type: application/json" --data-binary "@$data" "$@" "$url"
	fi
}

# find_comment URL-OF-LIST JQ-FILTER: the id of the first comment with the
# marker, through every page.
find_comment() {
	page=1
	while :; do
		resp=$(api GET "$1&per_page=100&page=$page") || return 1
		id=$(printf '%s' "$resp" | jq -r --arg m "$marker" "[.[] | $2 | select(.body | startswith(\$m))][0].id // empty") || return 1
		if [ -n "$id" ]; then
			echo "$id"
			return 0
		fi
		[ "$(printf '%s' "$resp" | jq length)" -lt 100 ] && return 0
		page=$((page + 1))
	done
}

post() {
	if [ "$platform" = github ]; then
		root=${GITHUB_API_URL:-https://api.github.com}/repos/${GITHUB_REPOSITORY:-}
		pr=$(printf '%s' "${GITHUB_REF:-}" | sed -n 's#^refs/pull/\([0-9][0-9]*\)/.*#\1#p')
		[ -n "$pr" ] || { echo "GITHUB_REF ${GITHUB_REF:-} names no pull request" >&2; return 1; }
		id=$(find_comment "$root/issues/$pr/comments?sort=created" '.') || return 1
		if [ -n "$id" ]; then
			api PATCH "$root/issues/comments/$id" "$body" >/dev/null && echo "updated comment $id on pull request $pr"
		else
			api POST "$root/issues/$pr/comments" "$body" >/dev/null && echo "commented on pull request $pr"
		fi
	else
		root=${CI_API_V4_URL:-}/projects/${CI_PROJECT_ID:-}/merge_requests/${CI_MERGE_REQUEST_IID:-}
		id=$(find_comment "$root/notes?sort=asc&order_by=created_at" 'select(.system | not)') || return 1
		if [ -n "$id" ]; then
			api PUT "$root/notes/$id" "$body" >/dev/null && echo "updated note $id on merge request ${CI_MERGE_REQUEST_IID:-}"
		else
			api POST "$root/notes" "$body" >/dev/null && echo "commented on merge request ${CI_MERGE_REQUEST_IID:-}"
		fi
	fi
}

post || echo "warning: could not post the diff as a comment (see above); it is in this log" >&2
exit "$status"
