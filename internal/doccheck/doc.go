// Package doccheck holds repository-wide documentation checks; it has no
// code of its own, only tests, run by go test ./... like every other test.
//
// The tests walk the files of the repository (the module root is found by
// going up from this directory to go.mod; the file list comes from
// "git ls-files" when git is available, otherwise from a walk that skips
// .git and testdata directories) and fail when:
//
//   - a Markdown link or image (inline [text](target), a reference
//     definition [label]: target, or an HTML href/src attribute) has a
//     relative target that does not resolve to a file or directory inside
//     the repository, or that names a heading anchor the target Markdown
//     file does not define (GitHub heading slugs and explicit
//     <a id="..."> / <a name="..."> anchors are recognised);
//   - any file (Go sources and every other file) mentions the team's
//     private reference directory, which a clone of the repository does
//     not have (see privateRefs in the test for the exact strings).
//   - a length in the tables of docs/PROTOCOL.md (the exact command
//     lengths of section 5, the overheads of section 8) differs from what
//     the suites compute.
//
// External targets (any URL scheme such as http:, https:, mailto:) are not
// fetched. Links inside fenced code blocks and inline code spans are not
// links and are ignored.
package doccheck
