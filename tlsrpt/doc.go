// Package tlsrpt implements SMTP TLS Reporting (TLSRPT, RFC 8460) for the
// mtasts library: the sending MTA's side of telling a domain how its TLS
// went, and the receiving side of reading what others tell it.
//
// It holds, one role per file:
//
//   - The TLSRPT record (record.go, lookup.go): ParseRecord parses a
//     "v=TLSRPTv1; rua=..." TXT record to the grammar of RFC 8460 3, and
//     LookupRecord finds it at _smtp._tls.<domain> through the core
//     package's mtasts.Resolver.
//
//   - The report model (report.go): Report and the types under it marshal to
//     the JSON schema of RFC 8460 4.4, with constants for the result types of
//     4.3 and the policy types.
//
//   - Reading received reports (decode.go, read.go, quirks.go): ParseReport
//     reads the JSON strictly, with errors that name the JSON path at fault;
//     ReadReport reads a report as received, its JSON, gzip-compressed or
//     in an e-mail message, within size bounds, forgives what real senders
//     get wrong and says what it forgave, as a Warning per deviation naming
//     its JSON path or MIME part; ReadOptions.Strict reads strictly.
//
//   - DKIM (dkim.go): VerifyDKIM verifies a report message's signatures as
//     RFC 8460 3 asks, by the reporting domain, without l=, with keys looked
//     up through the mtasts.Resolver.
//
//   - Collecting reports (collect.go): a Collector takes reports posted over
//     HTTPS (RFC 8460 5.4) as an http.Handler, and report messages with
//     CollectMessage, which ignores those without a valid DKIM signature,
//     and hands each report to the caller's Store.
//
//   - Policies as reports describe them (policy.go): a Target, holding the
//     recipient domain and the MX host of a delivery, describes an MTA-STS
//     policy, the answer of the cache package, DANE TLSA records or the
//     absence of any policy, each for its own policy domain.
//
//   - Recording each delivery's TLS outcome (recorder.go, daystate.go): a
//     Recorder counts successes and failures, with failure-detail rows, per
//     policy domain, recipient domain, policy and UTC day (RFC 8460 4.1,
//     4.2); recording a success takes no lock and allocates nothing, and
//     Record takes sessions of any other shape, or a batch, in one call.
//     Past a cap of rows per policy domain and day, failures count in the
//     summary only. Results reads a day's counts for an admin page.
//
//   - Stores (store.go, filestore.go): a Store keeps the counts a Recorder
//     flushes every second, until the day is taken and released: in
//     memory (the default), OpenFileStore (a day survives a crash but for
//     its last second), and, in the module redisstore, a store in
//     Redis shared by a fleet, which then sends one report per policy
//     domain and day. Taking a day is two steps: Take claims it and returns
//     its counts, Release deletes them once the reports are kept, so a
//     crash between the two loses nothing. Package storetest checks a
//     Store, and an Outbox, against its contract.
//
//   - Delivering a report (payload.go, https.go, mail.go, sender.go): a
//     Sender gzips a finished Report (RFC 8460 5.1, 5.2) and delivers it to
//     every mailto: and https: rua URI of the policy domain's record: a
//     POST through the core's guarded transport (5.4), or a Message, its
//     bytes with the parts an MTA queues it by, handed to the MTA's own
//     submit function (5.3), one per address or one for all, with retries
//     (5.5). SenderOptions say what the MTA can and will send: SMTPUTF8
//     addresses, suppressed addresses and https URIs skipped.
//
//   - The daily schedule (reporter.go, outbox.go): a Reporter takes each
//     closed day after a random delay (RFC 8460 4.1) and makes its reports:
//     one per policy domain, or, as ReportInfo says, per recipient domain
//     and per DANE MX host. It puts them in an Outbox (in memory by default,
//     OpenFileOutbox across restarts, or the Redis outbox of redisstore
//     across a fleet), releases the day, and sends the
//     reports with the Sender, spread over time. The outbox records each
//     rua URI that took a report, so that after a crash a report is sent
//     to the URIs that did not, with the same report-id.
//
// The core package mtasts does not import this one. Every error wraps a
// sentinel (ErrNoRecord, ErrRecordSyntax, ErrInvalidReport, ...) for
// errors.Is.
package tlsrpt
