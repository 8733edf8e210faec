// Command cgfuncs compares two sets of callgrind dumps of the same binary
// function by function: the instructions each function executed itself,
// per request, in set b less set a. bench/instructions.sh runs it with
// FUNCS=1.
//
//	cgfuncs -bin caddy -n 4000 -a same.1,same.2 -b token.1,token.2
//
// The dumps must be written with --dump-instr=yes. Costs are attributed by
// instruction address through the binary's symbol table rather than by
// callgrind's function names: callgrind follows calls with a shadow stack,
// which Go's goroutine switches leave wrong, so its own per-function
// attribution of a Go program is not reliable, while an instruction's
// address always is.
package main

import (
	"bufio"
	"debug/elf"
	"flag"
	"fmt"
	"log"
	"os"
	"sort"
	"strconv"
	"strings"
)

func main() {
	bin := flag.String("bin", "", "the binary the dumps were taken of")
	n := flag.Float64("n", 1, "requests per dump: costs are divided by it")
	a := flag.String("a", "", "comma-separated dumps of the first kind")
	b := flag.String("b", "", "comma-separated dumps of the second kind")
	top := flag.Int("top", 30, "how many functions to print")
	group := flag.String("group", "", "comma-separated substrings: also print the total of the functions whose names hold each")
	flag.Parse()
	if *bin == "" || *a == "" || *b == "" {
		flag.Usage()
		os.Exit(2)
	}
	syms, err := symbols(*bin)
	if err != nil {
		log.Fatal(err)
	}
	ca, err := perRequest(syms, strings.Split(*a, ","), *n)
	if err != nil {
		log.Fatal(err)
	}
	cb, err := perRequest(syms, strings.Split(*b, ","), *n)
	if err != nil {
		log.Fatal(err)
	}
	type row struct {
		name       string
		a, b, diff float64
	}
	var rows []row
	var ta, tb float64
	for name := range union(ca, cb) {
		rows = append(rows, row{name, ca[name], cb[name], cb[name] - ca[name]})
		ta += ca[name]
		tb += cb[name]
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].diff > rows[j].diff })
	fmt.Printf("instructions per request: a %.0f, b %.0f, b - a %.0f\n", ta, tb, tb-ta)
	for _, g := range strings.Split(*group, ",") {
		if g == "" {
			continue
		}
		var ga, gb float64
		for _, r := range rows {
			if strings.Contains(r.name, g) {
				ga += r.a
				gb += r.b
			}
		}
		fmt.Printf("functions whose names hold %q: a %.0f, b %.0f, b - a %.0f\n", g, ga, gb, gb-ga)
	}
	fmt.Printf("%9s %9s %9s  function\n", "b - a", "b", "a")
	for i, r := range rows {
		if i == *top {
			break
		}
		fmt.Printf("%9.0f %9.0f %9.0f  %s\n", r.diff, r.b, r.a, r.name)
	}
}

func union(a, b map[string]float64) map[string]bool {
	u := make(map[string]bool, len(a)+len(b))
	for k := range a {
		u[k] = true
	}
	for k := range b {
		u[k] = true
	}
	return u
}

type symbol struct {
	start, end uint64
	name       string
}

// symbols returns the binary's functions sorted by address.
func symbols(path string) ([]symbol, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	all, err := f.Symbols()
	if err != nil {
		return nil, err
	}
	var syms []symbol
	for _, s := range all {
		if elf.ST_TYPE(s.Info) == elf.STT_FUNC && s.Size > 0 {
			syms = append(syms, symbol{s.Value, s.Value + s.Size, s.Name})
		}
	}
	sort.Slice(syms, func(i, j int) bool { return syms[i].start < syms[j].start })
	return syms, nil
}

func lookup(syms []symbol, addr uint64) string {
	i := sort.Search(len(syms), func(i int) bool { return syms[i].start > addr }) - 1
	if i >= 0 && addr < syms[i].end {
		return syms[i].name
	}
	return "?"
}

// perRequest sums the dumps' self costs by function and divides them by
// n times the number of dumps.
func perRequest(syms []symbol, files []string, n float64) (map[string]float64, error) {
	byAddr := make(map[uint64]uint64)
	for _, name := range files {
		if err := selfCosts(name, byAddr); err != nil {
			return nil, err
		}
	}
	out := make(map[string]float64)
	for addr, c := range byAddr {
		out[lookup(syms, addr)] += float64(c) / (n * float64(len(files)))
	}
	return out, nil
}

// selfCosts adds the cost lines of one callgrind dump (positions "instr
// line", one event) to byAddr. The cost line after a calls= line is the
// call's inclusive cost, not the caller's own, and is left out.
func selfCosts(name string, byAddr map[uint64]uint64) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var last uint64
	call := false
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		c := line[0]
		if !(c >= '0' && c <= '9' || c == '+' || c == '-' || c == '*') {
			call = strings.HasPrefix(line, "calls=")
			continue
		}
		fields := strings.Fields(line)
		addr, err := position(fields[0], last)
		if err != nil {
			return fmt.Errorf("%s: %q: %v", name, line, err)
		}
		last = addr
		if !call && len(fields) >= 3 {
			cost, err := strconv.ParseUint(fields[2], 10, 64)
			if err != nil {
				return fmt.Errorf("%s: %q: %v", name, line, err)
			}
			byAddr[addr] += cost
		}
		call = false
	}
	return sc.Err()
}

// position decodes a compressed callgrind position: absolute (hex or
// decimal), relative (+N, -N) or the same as the last (*).
func position(tok string, last uint64) (uint64, error) {
	switch {
	case tok == "*":
		return last, nil
	case tok[0] == '+':
		d, err := strconv.ParseUint(tok[1:], 0, 64)
		return last + d, err
	case tok[0] == '-':
		d, err := strconv.ParseUint(tok[1:], 0, 64)
		return last - d, err
	}
	return strconv.ParseUint(tok, 0, 64)
}
