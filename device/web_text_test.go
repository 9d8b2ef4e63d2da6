package device

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"golang.org/x/net/html"
)

// The app's sentences live in one file, device/web/text.js, for
// translators (docs/app.md, "Text"). A script takes its part as
// `const NAME = camdText.PART` or reads `camdText.PART.KEY`; the page,
// index.html, names its texts in the page part by key (pageTextAttrs).
var (
	textPart    = regexp.MustCompile(`^  (\w+): \{$`)
	textKey     = regexp.MustCompile(`^    "?([\w.]+)"?:`)
	textTake    = regexp.MustCompile(`const (\w+) = camdText\.(\w+);`)
	textDirect  = regexp.MustCompile(`camdText\.(\w+)\.(\w+)`)
	jsLiteral   = regexp.MustCompile(`"(?:[^"\\\n]|\\.)*"`)
	proseString = regexp.MustCompile(`^"(?:.*[A-Za-z]+ [A-Za-z]+|[A-Z][a-z]+[.…?]?"$)`)
	lineComment = regexp.MustCompile(`(^|\s)//.*$`)
)

// notProse are the scripts' strings that the prose pattern takes for
// sentences but that are no text for people: HTTP and DOM names, and
// states the page names (shown through text.js's states).
var notProse = []string{
	`"use strict"`, `"#nav a"`, `"not paired"`, `"answered elsewhere"`,
	`"Bearer "`, `"Content-Type"`, `"Authorization"`, `"Accept"`, `"Last-Event-ID"`,
	`"HMAC"`, `"SHA-256"`, `"X-Camd-Start"`, `"X-Camd-End"`, `"Content-Length"`, `"Location"`,
	`"PushManager"`, `"Notification"`, `"ArrowLeft"`, `"ArrowRight"`,
}

// pageTextAttrs are the attributes by which index.html's elements name
// a key of text.js's page part: for their text, and for the attributes
// people read or hear (shell.js fills them in).
var pageTextAttrs = map[string]string{
	"data-t":             "",
	"data-t-aria":        "aria-label",
	"data-t-placeholder": "placeholder",
	"data-t-title":       "title",
}

// pageSymbols are the characters index.html may show outside a data-t
// element: arrows, dashes and brackets, no words.
const pageSymbols = "◀▶×–()"

func TestAppTextInOnePlace(t *testing.T) {
	src, err := os.ReadFile("web/text.js")
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]map[string]bool{}
	var part string
	for _, line := range strings.Split(string(src), "\n") {
		if m := textPart.FindStringSubmatch(line); m != nil {
			part = m[1]
			keys[part] = map[string]bool{}
		} else if m := textKey.FindStringSubmatch(line); m != nil && part != "" {
			keys[part][m[1]] = true
		}
	}
	if len(keys) < 10 || len(keys["shell"]) == 0 {
		t.Fatalf("text.js: parts %v", keys)
	}

	scripts, _ := filepath.Glob("web/*.js")
	for _, path := range scripts {
		if filepath.Base(path) == "text.js" {
			continue
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var lines []string
		for _, line := range strings.Split(string(b), "\n") {
			lines = append(lines, lineComment.ReplaceAllString(line, ""))
		}
		js := strings.Join(lines, "\n")
		check := func(part, key string) {
			if _, ok := keys[part]; !ok {
				t.Errorf("%s: camdText.%s: no such part in text.js", path, part)
			} else if !keys[part][key] {
				t.Errorf("%s: camdText.%s.%s is not in text.js", path, part, key)
			}
		}
		for _, m := range textTake.FindAllStringSubmatch(js, -1) {
			for _, u := range regexp.MustCompile(`\b`+m[1]+`\.(\w+)`).FindAllStringSubmatch(js, -1) {
				check(m[2], u[1])
			}
		}
		for _, m := range textDirect.FindAllStringSubmatch(js, -1) {
			check(m[1], m[2])
		}
		// No sentence left behind in the script (comments aside).
		for i, line := range lines {
			for _, s := range jsLiteral.FindAllString(line, -1) {
				if proseString.MatchString(s) && !slices.Contains(notProse, s) {
					t.Errorf("%s:%d: %s: text for people belongs in text.js", path, i+1, s)
				}
			}
		}
	}
	checkPageText(t, keys["page"])
}

// checkPageText checks index.html against text.js's page part: every
// key it names is there, every page key is named, and no word of the
// page is written outside it (the document's <title>, which must be
// there before any script runs, and the commands in <code> aside).
func checkPageText(t *testing.T, page map[string]bool) {
	t.Helper()
	if len(page) == 0 {
		t.Fatal("text.js has no page part")
	}
	src, err := os.ReadFile("web/index.html")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := html.Parse(bytes.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	used := map[string]bool{}
	var walk func(n *html.Node, filled bool)
	walk = func(n *html.Node, filled bool) {
		switch n.Type {
		case html.TextNode:
			if text := strings.TrimSpace(n.Data); text != "" && !filled && strings.Trim(text, pageSymbols+" \n") != "" {
				t.Errorf("index.html: %q is written in the page: name a key of text.js's page part (data-t)", text)
			}
		case html.ElementNode:
			switch n.Data {
			case "title", "code", "script", "style":
				return
			}
			for _, a := range n.Attr {
				if _, ok := pageTextAttrs[a.Key]; ok {
					used[a.Val] = true
					if !page[a.Val] {
						t.Errorf("index.html: <%s %s=%q>: no such key in text.js's page part", n.Data, a.Key, a.Val)
					}
					if a.Key == "data-t" {
						if n.FirstChild != nil {
							t.Errorf("index.html: <%s data-t=%q> has content of its own (shell.js replaces it)", n.Data, a.Val)
						}
						filled = true
					}
				}
				for from, to := range pageTextAttrs {
					if to != "" && a.Key == to {
						t.Errorf("index.html: <%s %s=%q>: use %s and a key of text.js's page part", n.Data, a.Key, a.Val, from)
					}
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c, filled)
		}
	}
	walk(doc, false)
	for key := range page {
		if !used[key] {
			t.Errorf("text.js: page.%s is not used in index.html", key)
		}
	}
	if len(used) < 100 {
		t.Errorf("index.html names only %d page keys", len(used))
	}
}
