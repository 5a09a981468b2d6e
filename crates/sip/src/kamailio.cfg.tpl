#!KAMAILIO
#
# kamailio.cfg for pbx365 ({{DOMAIN}}), written by `pbx365 sip config`.
# Regenerate it after changing [sip] settings instead of editing it: pbx365 owns this file.
#
# Accounts: auth_db reads digest hashes (HA1, HA1b) from pbx365's store (view sip_subscriber).
# Routing: htables loaded from the store at start (views sip_profiles, sip_names, sip_mobiles)
# and kept current by pbx365 over JSON-RPC (htable.sets / htable.delete).
# Presence: pbx365 publishes each profile as PIDF over JSON-RPC (pua.publish); pua sends the
# PUBLISH to this Kamailio's own presence server (in memory), which tells watching phones.

#!define DBURL "{{DB_URL}}"

####### Global parameters #########
debug=2
log_stderror={{LOG_STDERR}}
log_prefix="{$mt $rm $ci} "
memdbg=5
memlog=5
children={{CHILDREN}}
tcp_children={{CHILDREN}}
auto_aliases=no
alias="{{DOMAIN}}"
server_signature=no
user_agent_header="User-Agent: pbx365"
server_header="Server: pbx365"
tcp_accept_no_cl=yes
http_reply_parse=no

listen=udp:{{SIP_LISTEN}}
listen=tcp:{{SIP_LISTEN}}
# JSON-RPC for pbx365 (only requests to this socket from {{RPC_ALLOW}} are answered).
listen=tcp:{{RPC_LISTEN}}

####### Modules #########
loadmodule "{{DB_MODULE}}"
loadmodule "jsonrpcs.so"
loadmodule "kex.so"
loadmodule "corex.so"
loadmodule "tm.so"
loadmodule "tmx.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "xlog.so"
loadmodule "sanity.so"
loadmodule "auth.so"
loadmodule "auth_db.so"
loadmodule "htable.so"
loadmodule "pike.so"
loadmodule "uac.so"
loadmodule "xhttp.so"
loadmodule "dialog.so"
loadmodule "presence.so"
loadmodule "presence_xml.so"
loadmodule "pua.so"
loadmodule "pua_rpc.so"

# ----- jsonrpcs: over HTTP only (no FIFO or datagram socket to secure) -----
modparam("jsonrpcs", "transport", 1)
modparam("jsonrpcs", "pretty_format", 0)

# ----- tm -----
modparam("tm", "fr_timer", 30000)
modparam("tm", "fr_inv_timer", 120000)

# ----- rr -----
modparam("rr", "enable_full_lr", 1)
modparam("rr", "append_fromtag", 1)

# ----- usrloc / registrar: registrations live in memory -----
modparam("usrloc", "db_mode", 0)
modparam("registrar", "max_expires", 3600)
modparam("registrar", "min_expires", 30)

# ----- auth_db: pbx365's digest hashes, never the secrets -----
modparam("auth_db", "db_url", DBURL)
modparam("auth_db", "calculate_ha1", 0)
modparam("auth_db", "user_column", "username")
modparam("auth_db", "domain_column", "domain")
modparam("auth_db", "password_column", "ha1")
modparam("auth_db", "password_column_2", "ha1b")
modparam("auth_db", "use_domain", 1)
modparam("auth_db", "version_table", 0)
modparam("auth_db", "load_credentials", "")

# ----- htable: routing state from pbx365; counters for failed authentication -----
modparam("htable", "db_url", DBURL)
modparam("htable", "fetch_rows", 2000)
modparam("htable", "htable", "prof=>size=14;dbtable=sip_profiles;cols='key_name,key_value';")
modparam("htable", "htable", "name=>size=14;dbtable=sip_names;cols='key_name,key_value';")
modparam("htable", "htable", "mob=>size=14;dbtable=sip_mobiles;cols='key_name,key_value';")
modparam("htable", "htable", "authfail=>size=10;autoexpire={{FAIL_WINDOW}};")
modparam("htable", "htable", "authcid=>size=10;autoexpire={{FAIL_WINDOW}};")
modparam("htable", "htable", "ban=>size=10;autoexpire={{BAN_SECONDS}};")
# Totals for pbx365's status page (read over JSON-RPC): failed authentications, bans.
modparam("htable", "htable", "stats=>size=2;")

# ----- pike: request floods from one address -----
modparam("pike", "sampling_time_unit", 2)
modparam("pike", "reqs_density_per_unit", 300)
modparam("pike", "remove_latency", 4)

# ----- dialog: calls in progress, in memory (pbx365 reads them with dlg.list) -----
modparam("dialog", "db_mode", 0)

# ----- presence: profiles as PIDF for the phones watching an extension -----
# Publications and subscriptions live in memory only (no presence tables): pbx365 publishes
# every extension again when it sees this Kamailio (re)started. Any authenticated extension may
# watch any other (force_active: no XCAP rules).
modparam("presence", "publ_cache", 2)
modparam("presence", "subs_db_mode", 0)
modparam("presence", "max_expires", 3600)
modparam("presence_xml", "force_active", 1)
# pua (the publishing side) keeps its publications in memory and refreshes them; it insists on a
# table (`pua`, with its row in `version`), which pbx365's store provides (migration 0012).
modparam("pua", "db_url", DBURL)
modparam("pua", "db_mode", 0)
modparam("pua", "update_period", 300)
modparam("pua", "default_expires", 3600)
modparam("pua", "outbound_proxy", "sip:{{PUBLISH_TO}};transport=udp")

# ----- uac: the caller's display name on the INVITE -----
modparam("uac", "restore_mode", "none")

####### Routing #########

# The totals exist from the start ($shtinc only increments existing items).
event_route[htable:mod-init] {
	$sht(stats=>auth_failed) = 0;
	$sht(stats=>banned) = 0;
}

request_route {
	# Scanners (SIPVicious and friends) get nothing, not even a log line.
	if ($ua =~ "friendly-scanner|sipvicious|sipcli|VaxSIPUserAgent|sundayddr") {
		exit;
	}
	# Presence is pbx365's to publish: only the PUBLISH that pua sends from this Kamailio's own
	# UDP socket (source address and port are its own, which no other host can send from) is
	# taken; phones get 403. Before the flood check: a restart republishes every extension.
	if (is_method("PUBLISH")) {
		if (proto == UDP && $si == $Ri && $sp == $Rp) {
			if (!t_newtran()) {
				sl_reply_error();
				exit;
			}
			handle_publish();
			t_release();
			exit;
		}
		sl_send_reply("403", "Presence is published by pbx365");
		exit;
	}
	if ($sht(ban=>$si) != $null) {
		sl_send_reply("403", "Forbidden");
		exit;
	}
	if (!pike_check_req()) {
		# Several workers see the same flood at once: the slot lock lets only the first ban and log.
		sht_lock("ban=>$si");
		if ($sht(ban=>$si) == $null) {
			$sht(ban=>$si) = 1;
			$var(t) = $shtinc(stats=>banned);
			xlog("L_WARN", "pbx365: banned $si for {{BAN_SECONDS}} s (request flood)\n");
		}
		sht_unlock("ban=>$si");
		exit;
	}
	if (!mf_process_maxfwd_header("10")) {
		sl_send_reply("483", "Too Many Hops");
		exit;
	}
	if (!sanity_check()) {
		exit;
	}
	if (is_method("OPTIONS") && uri == myself && $rU == $null) {
		sl_send_reply("200", "OK");
		exit;
	}

	route(WITHINDLG);

	if (is_method("CANCEL")) {
		if (t_check_trans()) {
			t_relay();
		}
		exit;
	}
	if (!is_method("ACK")) {
		if (t_precheck_trans()) {
			t_check_trans();
			exit;
		}
		t_check_trans();
	}

	# No relay: only this domain's users, to this domain's users (or the configured trunk).
	if (!(from_uri == myself)) {
		sl_send_reply("403", "Not relaying");
		exit;
	}

	route(AUTH);

	if (is_method("REGISTER")) {
		if (!save("location")) {
			sl_reply_error();
		}
		exit;
	}
	if (is_method("INVITE")) {
		route(CALL);
		exit;
	}
	if (is_method("MESSAGE")) {
		route(TOEXT);
		exit;
	}
	if (is_method("SUBSCRIBE")) {
		route(PRESENCE);
		exit;
	}
	sl_send_reply("405", "Method Not Allowed");
	exit;
}

# Requests inside a dialog follow the Record-Route set.
route[WITHINDLG] {
	if (!has_totag()) return;
	# A watcher refreshing or ending its subscription: authenticated like a new one.
	if (is_method("SUBSCRIBE") && uri == myself) return;
	if (loose_route()) {
		t_relay();
		exit;
	}
	if (is_method("ACK")) {
		if (t_check_trans()) {
			t_relay();
		}
		exit;
	}
	sl_send_reply("404", "Not here");
	exit;
}

# Digest authentication against pbx365's hashes; failures are counted per source address and
# an address with too many is banned for a while (logged once, at the ban).
route[AUTH] {
	if (auth_check("{{DOMAIN}}", "sip_subscriber", "1")) {
		consume_credentials();
		return;
	}
	$var(rc) = $rc;
	if ($var(rc) == -2 || $var(rc) == -3 || $var(rc) == -8) {
		$var(t) = $shtinc(stats=>auth_failed);
		# A phone with a wrong secret answers each new challenge again on its Call-ID: that
		# counts once for its address (one wrong phone must not ban an office), while a guesser
		# uses a new Call-ID per guess. A Call-ID that keeps failing counts again every
		# {{FAIL_LIMIT}} failures. ($shtinc does not create a missing item: the first sets it.)
		if ($sht(authcid=>$ci) == $null) {
			$sht(authcid=>$ci) = 1;
			$var(c) = 1;
		} else {
			$var(c) = $shtinc(authcid=>$ci);
		}
		$var(n) = 0;
		# Workers answer the same guesser in parallel: slot locks keep the count and the ban
		# (logged once) exact.
		if ($var(c) mod {{FAIL_LIMIT}} == 1) {
			sht_lock("authfail=>$si");
			if ($sht(authfail=>$si) == $null) {
				$sht(authfail=>$si) = 1;
				$var(n) = 1;
			} else {
				$var(n) = $shtinc(authfail=>$si);
			}
			sht_unlock("authfail=>$si");
		}
		if ($var(n) >= {{FAIL_LIMIT}}) {
			sht_lock("ban=>$si");
			if ($sht(ban=>$si) == $null) {
				$sht(ban=>$si) = 1;
				$var(t) = $shtinc(stats=>banned);
				xlog("L_WARN", "pbx365: banned $si for {{BAN_SECONDS}} s after $var(n) failed authentications\n");
			}
			sht_unlock("ban=>$si");
			sl_send_reply("403", "Forbidden");
			exit;
		}
		xlog("L_NOTICE", "pbx365: failed authentication for $fU from $si\n");
	}
	if (is_method("REGISTER")) {
		www_challenge("{{DOMAIN}}", "0");
	} else {
		proxy_challenge("{{DOMAIN}}", "0");
	}
	exit;
}

# A call from an authenticated extension: its display name on the INVITE, then to the
# dialled extension as its profile says.
route[CALL] {
	# ($var cannot hold $null and keeps its value between messages: test the htable first.)
	# The name goes inside a quoted string: backslash and double quote are escaped, and a name
	# with control characters (a line break would start a new header) is not used at all.
	if ($sht(name=>$fU) != $null && $sht(name=>$fU) != "" && !($sht(name=>$fU) =~ "[[:cntrl:]]")) {
		$var(raw) = $sht(name=>$fU);
		$var(name) = $(var(raw){s.replace,\,\\}{s.replace,",\"});
		uac_replace_from("\"$var(name)\"", "$fu");
		remove_hf("P-Asserted-Identity");
		append_hf("P-Asserted-Identity: \"$var(name)\" <sip:$fU@{{DOMAIN}}>\r\n");
	}
	dlg_manage();
	record_route();
	route(TOEXT);
}

# To an extension: 404 unknown, the profile's answer, 480 when not registered, else ring.
route[TOEXT] {
	if ($rU == $null || !(uri == myself)) {
		sl_send_reply("403", "Not relaying");
		exit;
	}
	if ($sht(prof=>$rU) == $null) {
		sl_send_reply("404", "Not Found");
		exit;
	}
	$var(prof) = $sht(prof=>$rU);
	if ($var(prof) == "dnd") {
		send_reply("486", "Busy Here");
		exit;
	}
	if ($var(prof) == "away") {
		route(AWAY);
	}
	if ($var(prof) == "business_trip") {
		route(BUSINESS_TRIP);
	}
	if (!lookup("location")) {
		send_reply("480", "Temporarily Unavailable");
		exit;
	}
	if (!t_relay()) {
		sl_reply_error();
	}
	exit;
}

# An authenticated extension watches another one's presence (Event: presence only). A new
# subscription to an unknown number gets 404; the first NOTIFY follows the 200 at once.
route[PRESENCE] {
	if (!($hdr(Event) =~ "^presence($|[ ;])")) {
		sl_send_reply("489", "Bad Event");
		exit;
	}
	if (!has_totag() && ($rU == $null || !(uri == myself) || $sht(prof=>$rU) == $null)) {
		sl_send_reply("404", "Not Found");
		exit;
	}
	if (!t_newtran()) {
		sl_reply_error();
		exit;
	}
	handle_subscribe();
	t_release();
	exit;
}

route[AWAY] {
{{AWAY}}
}

route[BUSINESS_TRIP] {
{{BUSINESS_TRIP}}
}

# Forward to the extension's mobile number through the configured trunk.
route[MOBILE] {
{{MOBILE}}
}

# JSON-RPC for pbx365: only on the RPC socket, only from pbx365's address.
event_route[xhttp:request] {
	if ($Rp != {{RPC_PORT}} || !({{RPC_ALLOW_EXPR}})) {
		xhttp_reply("403", "Forbidden", "text/plain", "forbidden\n");
		exit;
	}
	if ($hu =~ "^/RPC") {
		jsonrpc_dispatch();
		exit;
	}
	xhttp_reply("404", "Not Found", "text/plain", "not found\n");
}
