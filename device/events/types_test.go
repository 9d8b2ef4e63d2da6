package events

import (
	"os"
	"regexp"
	"testing"
)

// docs/events.md lists every type of Types, with who sees it and
// whether it is reserved, and no other.
func TestDocListsEveryType(t *testing.T) {
	doc, err := os.ReadFile("../../docs/events.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| `([a-z_.]+)` \\| (viewers|owners)( \\(reserved\\))? \\|")
	listed := map[string]Type{}
	for _, m := range row.FindAllStringSubmatch(string(doc), -1) {
		listed[m[1]] = Type{Name: m[1], Viewers: m[2] == "viewers", Reserved: m[3] != ""}
	}
	for _, ty := range Types {
		l, ok := listed[ty.Name]
		switch {
		case !ok:
			t.Errorf("docs/events.md does not list %s", ty.Name)
		case l.Viewers != ty.Viewers || l.Reserved != ty.Reserved:
			t.Errorf("docs/events.md: %+v; Types: %+v", l, ty)
		}
		delete(listed, ty.Name)
	}
	for name := range listed {
		t.Errorf("docs/events.md lists %s, which Types does not", name)
	}
}
