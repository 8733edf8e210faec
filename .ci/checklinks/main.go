// Command checklinks fails when a relative link or #anchor in the
// repository's tracked Markdown files leads nowhere: the file must exist,
// and an anchor must be one of the target's headings (as GitHub slugs
// them) or an explicit <a name>/id.
//
//	go run ./.ci/checklinks    from the repository root
package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"unicode"
)

var (
	// [text](target "title") and ![alt](target); the target has no spaces.
	inlineLink = regexp.MustCompile(`!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+"[^"]*")?\s*\)`)
	// [label]: target
	refLink  = regexp.MustCompile(`^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s.*)?$`)
	htmlHref = regexp.MustCompile(`<a\s[^>]*href="([^"]*)"`)
	htmlAnch = regexp.MustCompile(`<[a-zA-Z]+\s[^>]*(?:name|id)="([^"]*)"`)
	heading  = regexp.MustCompile(`^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$`)
	fence    = regexp.MustCompile("^[ \t]*(`{3,}|~{3,})([^`]*)$")
	codeSpan = regexp.MustCompile("`+[^`]*`+")
	linkText = regexp.MustCompile(`!?\[([^\]]*)\]\([^)]*\)`)
	htmlTag  = regexp.MustCompile(`<[^>]+>`)
	setextEq = regexp.MustCompile(`^\s{0,3}(=+|-+)\s*$`)
)

type link struct {
	file   string
	line   int
	target string
}

type doc struct {
	anchors map[string]bool
	links   []link
}

// slug is GitHub's anchor for a heading's text: lower case, punctuation
// other than - and _ dropped, each space a -.
func slug(text string) string {
	text = linkText.ReplaceAllString(text, "$1")
	text = codeSpan.ReplaceAllStringFunc(text, func(s string) string { return strings.Trim(s, "`") })
	text = htmlTag.ReplaceAllString(text, "")
	text = strings.ReplaceAll(text, "*", "")
	var b strings.Builder
	for _, r := range strings.ToLower(text) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

func parse(path string) (*doc, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	d := &doc{anchors: map[string]bool{}}
	seen := map[string]int{}
	addHeading := func(text string) {
		s := slug(text)
		if n, ok := seen[s]; ok {
			seen[s] = n + 1
			s = fmt.Sprintf("%s-%d", s, n+1)
		} else {
			seen[s] = 0
		}
		d.anchors[s] = true
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	inFence, fenceMark := false, ""
	prev := ""
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if m := fence.FindStringSubmatch(line); m != nil {
			// A fence closes with at least as many of the same marks
			// and nothing after them.
			if !inFence {
				inFence, fenceMark = true, m[1]
			} else if m[1][0] == fenceMark[0] && len(m[1]) >= len(fenceMark) && strings.TrimSpace(m[2]) == "" {
				inFence = false
			}
			prev = ""
			continue
		}
		if inFence {
			continue
		}
		if m := heading.FindStringSubmatch(line); m != nil {
			addHeading(m[2])
		} else if setextEq.MatchString(line) && strings.TrimSpace(prev) != "" && !strings.HasPrefix(strings.TrimSpace(prev), "|") && strings.Contains(line, "=") {
			addHeading(strings.TrimSpace(prev))
		}
		for _, m := range htmlAnch.FindAllStringSubmatch(line, -1) {
			d.anchors[m[1]] = true
		}
		plain := codeSpan.ReplaceAllString(line, "")
		var targets []string
		for _, m := range inlineLink.FindAllStringSubmatch(plain, -1) {
			targets = append(targets, m[1])
		}
		if m := refLink.FindStringSubmatch(plain); m != nil {
			targets = append(targets, m[1])
		}
		for _, m := range htmlHref.FindAllStringSubmatch(plain, -1) {
			targets = append(targets, m[1])
		}
		for _, t := range targets {
			d.links = append(d.links, link{path, n, t})
		}
		prev = line
	}
	return d, sc.Err()
}

func main() {
	out, err := exec.Command("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", "*.md").Output()
	if err != nil {
		fmt.Fprintln(os.Stderr, "checklinks: git ls-files:", err)
		os.Exit(2)
	}
	var files []string
	for _, f := range strings.Split(string(out), "\x00") {
		if f != "" && !strings.Contains(f, "node_modules/") {
			files = append(files, f)
		}
	}
	sort.Strings(files)
	docs := map[string]*doc{}
	get := func(p string) (*doc, error) {
		if d, ok := docs[p]; ok {
			return d, nil
		}
		d, err := parse(p)
		if err == nil {
			docs[p] = d
		}
		return d, err
	}
	var bad []string
	checked := 0
	for _, f := range files {
		if _, err := os.Stat(f); err != nil {
			continue // deleted in the work tree, not yet committed
		}
		d, err := get(f)
		if err != nil {
			fmt.Fprintln(os.Stderr, "checklinks:", err)
			os.Exit(2)
		}
		for _, l := range d.links {
			t := l.target
			if t == "" || strings.HasPrefix(t, "//") {
				continue
			}
			if u, err := url.Parse(t); err == nil && u.Scheme != "" {
				continue // http:, https:, mailto: …
			}
			checked++
			p, frag, _ := strings.Cut(t, "#")
			if up, err := url.PathUnescape(p); err == nil {
				p = up
			}
			target := f
			if p != "" {
				if strings.HasPrefix(p, "/") {
					target = filepath.Clean(strings.TrimPrefix(p, "/"))
				} else {
					target = filepath.Join(filepath.Dir(f), p)
				}
				if _, err := os.Stat(target); err != nil {
					bad = append(bad, fmt.Sprintf("%s:%d: %s: no such file %s", l.file, l.line, t, target))
					continue
				}
			}
			if frag == "" || !strings.HasSuffix(target, ".md") {
				continue
			}
			td, err := get(target)
			if err != nil {
				bad = append(bad, fmt.Sprintf("%s:%d: %s: %v", l.file, l.line, t, err))
				continue
			}
			if !td.anchors[frag] && !td.anchors[strings.ToLower(frag)] {
				bad = append(bad, fmt.Sprintf("%s:%d: %s: %s has no heading or anchor #%s", l.file, l.line, t, target, frag))
			}
		}
	}
	for _, b := range bad {
		fmt.Println(b)
	}
	if len(bad) > 0 {
		fmt.Fprintf(os.Stderr, "checklinks: %d dead links in %d Markdown files (see above)\n", len(bad), len(files))
		os.Exit(1)
	}
	fmt.Printf("checklinks: %d relative links in %d Markdown files, all resolve\n", checked, len(files))
}
