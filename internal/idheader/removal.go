package idheader

import "strings"

// RemovalLists holds, for each subset of the identity headers a verify
// answer may set, the comma-separated list of the others, made once per
// config so an answer does not build it.
type RemovalLists struct {
	Names []string // canonical names, as setIdentity sets them; bit i of a subset is names[i]
	Lists []string // indexed by the subset of names set
}

// NewRemovalLists makes the lists for names.
func NewRemovalLists(names []string) RemovalLists {
	rl := RemovalLists{Names: names, Lists: make([]string, 1<<len(names))}
	for set := range rl.Lists {
		var missing []string
		for i, n := range names {
			if set&(1<<i) == 0 {
				missing = append(missing, strings.ToLower(n))
			}
		}
		rl.Lists[set] = strings.Join(missing, ",")
	}
	return rl
}
