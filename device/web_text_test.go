package device

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The app's sentences live in one file, device/web/text.js, for
// translators (docs/app.md, "Text"). A script takes its part as
// `const NAME = camdText.PART` or reads `camdText.PART.KEY`.
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
}
