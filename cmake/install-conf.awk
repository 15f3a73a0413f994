# install-conf.awk: conf/wsgate.conf as installed in CONFDIR (cmake/Install.cmake).
#
#   awk -v confdir=/etc/wsgate -v wwwdir=/usr/share/wsgate/www -v docdir=/usr/share/doc/wsgate \
#       -f install-conf.awk conf/wsgate.conf > wsgate.conf
#
# conf/wsgate.conf's relative paths are relative to conf/ in the repository. In
# the installed file: "../certs/X" becomes "certs/X" (CONFDIR/certs/X), "../www"
# becomes WWWDIR, and the listen_tls group is commented out since no certificate
# is shipped. Any other "../" left on an active line is an error: map it here.

{
	line = $0
	sub(/build\/wsgate -t -c conf\/wsgate\.conf/, "wsgate -t -c " confdir "/wsgate.conf", line)
	gsub(/"\.\.\/certs\//, "\"certs/", line)
	gsub(/"\.\.\/www"/, "\"" wwwdir "\"", line)
	gsub(/"\.\.\/www\//, "\"" wwwdir "/", line)
}

/^listen_tls = \{/ {
	in_tls = 1
	print "# Installed with this group commented out: no certificate is shipped. Put"
	print "# the certificate and its key in " confdir "/certs/ (the key owned by"
	print "# the wsgate user, mode 600), then remove the '# ' in front of the group."
	print "# Or terminate TLS in nginx: " docdir "/nginx/wsgate.conf."
}

in_tls {
	line = (line == "") ? "#" : "# " line
	if ($0 ~ /^\};/)
		in_tls = 0
}

line !~ /^[ \t]*#/ && line ~ /"\.\.\// {
	printf "%s:%d: a relative path the installed configuration cannot resolve (map it in cmake/install-conf.awk): %s\n",
	       FILENAME, FNR, $0 > "/dev/stderr"
	failed = 1
}

{
	print line
}

END {
	if (in_tls) {
		printf "%s: the listen_tls group has no closing '};' line\n", FILENAME > "/dev/stderr"
		failed = 1
	}
	if (failed)
		exit 1
}
