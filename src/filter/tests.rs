//! Parsing: precedence, abbreviations and error messages (the matching itself is checked
//! against tcpdump in tests/filter.rs).

use super::*;

fn p(s: &str) -> Expr {
    match Filter::parse(s) {
        Ok(f) => f.expr,
        Err(e) => panic!("{s:?}: {e}"),
    }
}

fn err(s: &str) -> String {
    match Filter::parse(s) {
        Ok(f) => panic!("{s:?} parsed: {:?}", f.expr),
        Err(e) => e.to_string(),
    }
}

#[test]
fn and_and_or_have_equal_precedence_and_group_left() {
    assert_eq!(p("tcp or udp and port 53"), p("(tcp or udp) and port 53"));
    assert_ne!(p("tcp or udp and port 53"), p("tcp or (udp and port 53)"));
    assert_eq!(p("tcp and udp or icmp"), p("(tcp and udp) or icmp"));
    assert_eq!(p("tcp || udp && icmp"), p("(tcp or udp) and icmp"));
}

#[test]
fn not_binds_tightest() {
    assert_eq!(p("not tcp and udp"), p("(not tcp) and udp"));
    assert_eq!(p("! tcp or udp"), p("(not tcp) or udp"));
    assert_eq!(p("!tcp"), p("not tcp"));
}

#[test]
fn a_bare_address_takes_the_qualifiers_before_it() {
    assert_eq!(
        p("host 10.0.0.1 or 10.0.0.2"),
        p("host 10.0.0.1 or host 10.0.0.2")
    );
    assert_eq!(p("port 80 or 443"), p("port 80 or port 443"));
    assert_eq!(
        p("tcp src port 80 or 443"),
        p("tcp src port 80 or tcp src port 443")
    );
    assert_eq!(
        p("src host 10.0.0.1 and (10.0.0.2 or 10.0.0.3)"),
        p("src host 10.0.0.1 and (src host 10.0.0.2 or src host 10.0.0.3)")
    );
    assert_eq!(
        p("host 10.0.0.1 and not 10.0.0.2"),
        p("host 10.0.0.1 and not host 10.0.0.2")
    );
    assert_eq!(p("host not 10.0.0.2"), p("not host 10.0.0.2"));
    // The qualifiers of the last primitive, not of the first.
    assert_eq!(
        p("host 10.0.0.1 and port 80 or 443"),
        p("host 10.0.0.1 and port 80 or port 443")
    );
    // After a parenthesised expression: those in force before the parenthesis.
    assert_eq!(
        p("host 1.2.3.4 and (port 80) or 443"),
        p("host 1.2.3.4 and (port 80) or host 0.0.1.187")
    );
}

#[test]
fn partial_addresses_are_prefixes() {
    assert_eq!(p("net 10.1"), p("net 10.1.0.0/16"));
    assert_eq!(p("host 10.1"), p("net 10.1.0.0/16"));
    assert_eq!(p("net 10"), p("net 10.0.0.0/8"));
    assert_eq!(p("net 172.16.0.0 mask 255.240.0.0"), p("net 172.16.0.0/12"));
    // A bare number is a whole address for host: 0.0.0.10.
    assert_eq!(p("host 10"), p("host 0.0.0.10"));
}

#[test]
fn empty_keeps_everything() {
    let f = Filter::parse("  ").unwrap();
    assert!(f.matches(1, &[]));
    assert_eq!(
        Filter::from_args(&["tcp", "port", "80"]).unwrap().as_str(),
        "tcp port 80"
    );
}

#[test]
fn messages_name_the_word_and_what_was_expected() {
    assert_eq!(
        err("tcp prot 80"),
        "filter: at 'prot' (word 2): expected 'and', 'or' or the end of the expression (did \
         you mean 'port'?)"
    );
    assert_eq!(
        err("host"),
        "filter: at the end of the expression: expected an address, a number or a name"
    );
    assert_eq!(
        err("tcp and"),
        "filter: at the end of the expression: expected a primitive (host, net, port, \
         portrange, src, dst, tcp, udp, icmp, ip, ip6, ...)"
    );
    assert_eq!(
        err("(tcp or udp"),
        "filter: at the end of the expression: expected ')'"
    );
    assert_eq!(
        err("port 70000"),
        "filter: at '70000' (word 2): illegal port number 70000 > 65535"
    );
    assert_eq!(
        err("net 10.0.0.1/8"),
        "filter: at '10.0.0.1' (word 2): non-network bits set in \"10.0.0.1/8\""
    );
    assert_eq!(
        err("host 10.0.0.0/8"),
        "filter: at '10.0.0.0' (word 2): Mask syntax for networks only"
    );
    assert_eq!(
        err("tcp host 10.0.0.1"),
        "filter: at '10.0.0.1' (word 3): 'tcp' modifier applied to host"
    );
    assert_eq!(
        err("ip host ::1"),
        "filter: at '::1' (word 3): 'ip' modifier applied to ip6 host"
    );
    assert_eq!(
        err("udp port http"),
        "filter: at 'http' (word 3): port 'http' is tcp"
    );
    assert_eq!(
        err("host 256.1.1.1"),
        "filter: at '256.1.1.1' (word 2): invalid IPv4 address '256.1.1.1'"
    );
    assert_eq!(
        err("tcp or 80"),
        "filter: at '80' (word 3): an address, number or name needs a qualifier (host, net, \
         port, ...) before it"
    );
    assert!(err("port bogus").contains("unknown port 'bogus'"));
    assert_eq!(
        err("prot 80"),
        "filter: at 'prot' (word 1): expected a primitive (host, net, port, portrange, src, \
         dst, tcp, udp, icmp, ip, ip6, ...) (did you mean 'port'?)"
    );
    assert!(err("TCP port 80").contains("(did you mean 'tcp'?)"));
    assert!(err("tcp port 80 adn host 10.0.0.1").contains("at 'adn' (word 4)"));
    assert!(err("tcp port 80 adn host 10.0.0.1").contains("(did you mean 'and'?)"));
    assert!(err("tcp port 80 ; ls").contains("at ';' (word 4): unexpected character"));
    let long = vec!["tcp"; 600].join(" or ");
    assert!(err(&long).contains("more than 1000 words"));
    assert!(Filter::parse(&vec!["tcp"; 500].join(" or ")).is_ok());
    assert!(Filter::parse(&format!("{}tcp{}", "(".repeat(499), ")".repeat(499))).is_ok());
    // The deepest trees evaluate within a thread's stack.
    let deep = Filter::parse(&format!("{}tcp", "not ".repeat(998))).unwrap();
    assert!(!deep.matches(1, &[0; 60]), "an even number of nots of tcp");
    let chain = Filter::parse(&vec!["port 1"; 333].join(" or ")).unwrap();
    assert!(!chain.matches(1, &[0; 60]));
    assert!(err("ip port 80").contains("illegal qualifier of 'port'"));
}

#[test]
fn valid_libpcap_that_is_not_covered_says_so() {
    for (e, word) in [
        ("vlan and tcp", "'vlan' (word 1)"),
        ("tcp and ether host 00:11:22:33:44:55", "'ether' (word 3)"),
        ("greater 100", "'greater' (word 1)"),
        ("tcp[13] & 2 != 0", "'[' (word 2)"),
        ("host example.com", "'example.com' (word 2)"),
        ("gateway router", "'gateway' (word 1)"),
    ] {
        let e = Filter::parse(e).unwrap_err();
        assert!(e.is_unsupported(), "{e}");
        let s = e.to_string();
        assert!(s.contains(word), "{s}");
        assert!(
            s.contains("not supported") || s.contains("not resolved"),
            "{s}"
        );
    }
}

#[test]
fn syntax_errors_libpcap_also_rejects() {
    for e in [
        "(10.0.0.1)",
        "host 1.1.1.1 or ((2.2.2.2))",
        "net 10 mask 255.0.0.0",
        "src proto 6",
        "not 10.0.0.1",
        "host 1.2.3.4 and",
        "and tcp",
        "tcp)",
        "port 80-90",
    ] {
        assert!(Filter::parse(e).is_err(), "{e} parsed");
    }
}
