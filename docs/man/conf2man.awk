# conf2man.awk: builds wsgate.conf(5) from the reference configuration, so that
# the man page lists exactly the keys conf/wsgate.conf has, with their comments.
#
#   awk -v version=0.1.0 -v date=2026-11-29 -v sysconfdir=/etc \
#       -f conf2man.awk wsgate.conf.5.in conf/wsgate.conf > wsgate.conf.5
#
# The template's lines are copied with @VERSION@, @DATE@ and @SYSCONFDIR@
# replaced; its line `.\" @KEYS@` becomes one .SS per group and one .TP per key.
# What the configuration file must look like (its existing style):
#   - the comment block right above `name = {`, `name = value;` or `name = (`
#     describes that group or key; the file's first block (up to the first
#     blank line) is its header and is skipped;
#   - a comment line `# name = value;` is an optional key left out by default
#     (the comment lines above it describe it);
#   - comment lines indented by two or more spaces after `#` are shown verbatim;
#   - a list of groups `name = ( { a = ...; b = ...; }, ... );` documents the
#     fields of its first entry; a comment line `#   field - text` describes one.
# Integer keys get the first "N - M" or "N-M" of their comment as their range.

function esc(s) {
	gsub(/\\/, "\\e", s)
	if (s ~ /^[.']/)
		s = "\\&" s
	return s
}

function trim(s) {
	sub(/^[ \t]+/, "", s)
	sub(/[ \t]+$/, "", s)
	return s
}

function out(s) {
	body = body s "\n"
}

# Filled text (already escaped) in lines of at most 78 bytes where it can.
function out_wrapped(s,   n, i, w, line) {
	n = split(s, w, " ")
	line = ""
	for (i = 1; i <= n; i++) {
		if (line != "" && length(line) + 1 + length(w[i]) > 78) {
			out(line)
			line = ""
		}
		line = (line == "") ? w[i] : line " " w[i]
		if (line ~ /^[.']/)
			line = "\\&" line
	}
	if (line != "")
		out(line)
}

# The comment lines gathered so far, as roff: plain lines are filled text,
# runs of indented lines are a verbatim block, empty lines separate paragraphs.
function comment_roff(   i, line, verbatim) {
	verbatim = 0
	for (i = 1; i <= ncomment; i++) {
		line = comment[i]
		if (line ~ /^  /) {
			if (!verbatim) {
				out(".nf")
				verbatim = 1
			}
			out(esc(substr(line, 3)))
			continue
		}
		if (verbatim) {
			out(".fi")
			verbatim = 0
		}
		if (line == "")
			out(".sp")
		else
			out(esc(line))
	}
	if (verbatim)
		out(".fi")
}

function comment_text(   i, s) {
	s = ""
	for (i = 1; i <= ncomment; i++)
		s = s " " comment[i]
	return s
}

function type_of(v) {
	if (v ~ /^"/)
		return "string"
	if (v ~ /^(true|false)$/)
		return "boolean"
	if (v ~ /^-?[0-9]+L?$/)
		return "integer"
	if (v ~ /^-?[0-9]*\.[0-9]+$/)
		return "float"
	if (v ~ /^\[ *"/ || v ~ /^\[ *\]$/)
		return "array of strings"
	if (v ~ /^\[/)
		return "array"
	if (v ~ /^\(/)
		return "list of groups"
	return "value"
}

function range_of(text,   r) {
	if (match(text, /[0-9]+ ?- ?[0-9]+( [KMG]iB| ms)?/))
		return substr(text, RSTART, RLENGTH)
	return ""
}

function full_name(name,   i, s) {
	s = ""
	for (i = 1; i <= depth; i++)
		s = s group[i] "."
	return s name
}

# One .TP entry: the key, its type, default (or "absent" and an example when
# commented out), its range, then its comment.
function emit_key(name, value, optional,   type, r) {
	value = trim(value)
	type = type_of(value)
	out(".TP")
	out(".B " full_name(name))
	r = (type == "integer") ? range_of(comment_text()) : ""
	if (optional)
		out_wrapped("Type: " type "; absent by default; for example \\fB" esc(value) "\\fR.")
	else
		out_wrapped("Type: " type "; default \\fB" esc(value) "\\fR" (r != "" ? "; range " r : "") ".")
	out(".sp")
	if (ncomment == 0)
		out("See above.")
	comment_roff()
	ncomment = 0
}

# The text of a comment line "  field - text" and of the more deeply indented
# lines that continue it, as one line; "" when there is none.
function field_description(field,   j, k, s, indent) {
	for (j = 1; j <= ncomment; j++) {
		if (comment[j] !~ ("^  +" field " +- "))
			continue
		s = comment[j]
		sub(/^ +[a-z_]+ +- +/, "", s)
		match(comment[j], /- +/)
		indent = RSTART + RLENGTH - 1
		for (k = j + 1; k <= ncomment && substr(comment[k], 1, indent) ~ /^ +$/; k++)
			s = s " " trim(comment[k])
		return s
	}
	return ""
}

# A list of groups (tokens): the key, its comment, then the fields of its
# first entry, each described by a "  field - text" comment line when present.
function emit_list(name, text,   entry, n, i, parts, field, value, desc, nfields, fields, ftext) {
	out(".TP")
	out(".B " full_name(name))
	out("Type: list of groups.")
	out(".sp")
	comment_roff()
	entry = text
	sub(/^[^{]*\{/, "", entry)
	sub(/\}.*$/, "", entry)
	n = split(entry, parts, ";")
	nfields = 0
	for (i = 1; i <= n; i++) {
		field = trim(parts[i])
		if (field !~ /^[a-z_]+ *=/)
			continue
		value = field
		sub(/^[a-z_]+ *= */, "", value)
		sub(/ *=.*$/, "", field)
		desc = field_description(field)
		desc = toupper(substr(desc, 1, 1)) substr(desc, 2)
		fields[++nfields] = full_name(name) "." field
		ftext[nfields] = "Type: " type_of(value) "; for example \\fB" esc(value) "\\fR." \
				 (desc != "" ? " " esc(desc) : "")
	}
	out(".sp")
	out("Fields of each entry:")
	out(".RS 4")
	for (i = 1; i <= nfields; i++) {
		out(".TP")
		out(".B " fields[i])
		out_wrapped(ftext[i])
	}
	out(".RE")
	ncomment = 0
}

FNR == NR {
	template[++ntemplate] = $0
	next
}

# The configuration file.
FNR == 1 {
	in_header = 1
	ncomment = 0
	depth = 0
}

pending != "" {
	pending = pending " " trim($0)
	if ($0 ~ /^[ \t]*\);/ || (pending_kind == "value" && $0 ~ /;[ \t]*$/)) {
		if (pending_kind == "list")
			emit_list(pending_name, pending)
		else
			emit_key(pending_name, substr(pending, 1, length(pending) - 1), 0)
		pending = ""
	}
	next
}

/^[ \t]*$/ {
	if (in_header) {
		in_header = 0
		ncomment = 0
	}
	next
}

in_header {
	next
}

/^[ \t]*#/ {
	line = $0
	sub(/^[ \t]*# ?/, "", line)
	if (line ~ /^[a-z_]+ = .*;[ \t]*$/) {
		name = line
		sub(/ .*/, "", name)
		value = line
		sub(/^[a-z_]+ = /, "", value)
		sub(/;[ \t]*$/, "", value)
		emit_key(name, value, 1)
	} else {
		comment[++ncomment] = line
	}
	next
}

/^[ \t]*[a-z_]+ = \{[ \t]*$/ {
	name = trim($0)
	sub(/ .*/, "", name)
	group[++depth] = name
	out(".SS " substr(full_name(""), 1, length(full_name("")) - 1))
	comment_roff()
	ncomment = 0
	next
}

/^[ \t]*\};[ \t]*$/ {
	depth--
	next
}

/^[ \t]*[a-z_]+ = \([ \t]*$/ {
	pending_name = trim($0)
	sub(/ .*/, "", pending_name)
	pending_kind = "list"
	pending = trim($0)
	out(".SS " pending_name)
	next
}

/^[ \t]*[a-z_]+ = / {
	name = trim($0)
	sub(/ .*/, "", name)
	value = trim($0)
	sub(/^[a-z_]+ = /, "", value)
	sub(/[ \t]*#.*$/, "", value)
	if (value !~ /;$/) {
		pending_name = name
		pending_kind = "value"
		pending = value
		next
	}
	emit_key(name, substr(value, 1, length(value) - 1), 0)
	next
}

{
	printf "%s:%d: conf2man.awk cannot read this line: %s\n", FILENAME, FNR, $0 > "/dev/stderr"
	failed = 1
	exit 1
}

END {
	if (failed)
		exit 1
	for (i = 1; i <= ntemplate; i++) {
		line = template[i]
		if (line == ".\\\" @KEYS@") {
			printf "%s", body
			continue
		}
		gsub(/@VERSION@/, version, line)
		gsub(/@DATE@/, date, line)
		gsub(/@SYSCONFDIR@/, sysconfdir, line)
		print line
	}
}
