# Sourced by the test runners: count "$1", the output of a runner ending in
# "N passed, N failed", into total_pass and total_fail (a runner that did
# not get to its closing line counts as one failure).
total_pass=0
total_fail=0

count() {
	line=$(printf '%s\n' "$1" | grep -E '^[0-9]+ passed, [0-9]+ failed$' | tail -n 1)
	if [ -z "$line" ]; then
		total_fail=$((total_fail + 1))
		return
	fi
	total_pass=$((total_pass + $(echo "$line" | cut -d' ' -f1)))
	total_fail=$((total_fail + $(echo "$line" | cut -d' ' -f3)))
}
