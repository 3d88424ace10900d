// Package metriclabel hands the root package's result label of a lookup or
// fetch (the "result" label of its metrics and log records) to the other
// packages of this module, such as cache, without making it part of the
// root's API.
package metriclabel

// Result returns the label for the outcome err of a lookup or fetch: "ok"
// for nil, "canceled", "no-record", "fetch-error", ... The root package
// sets it when it is initialized, which is before any package that imports
// the root runs.
var Result func(err error) string
