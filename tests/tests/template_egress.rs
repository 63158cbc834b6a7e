//! The template's egress (I6, issue 11): for each `EgressMode` that creates the VPC, every
//! function that speaks SMTP to organisations (found in the code: it names the SMTP relay or the
//! probe sender) runs in private subnets whose default route is a NAT gateway with an Elastic IP
//! or a NAT instance with one, and S3 and DynamoDB are reached through gateway endpoints on those
//! subnets' route tables. And who may send as whom through SES (the functions' IAM statements
//! evaluated for `ses:SendRawEmail`). Reads `infra/template.yaml` offline, resolving `!If`,
//! `!Ref`, `!Sub` and conditions for the parameters (SAM's Globals merged into each function, as
//! the transform does).

use serde_norway::Value;
use std::collections::BTreeMap;
use std::path::Path;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("root")
}

fn template() -> Value {
    let p = root().join("infra/template.yaml");
    serde_norway::from_str(&std::fs::read_to_string(&p).expect("template")).expect("yaml")
}

/// The template under one parameter set: conditions evaluated, `!If` resolved.
struct Resolved<'a> {
    t: &'a Value,
    params: BTreeMap<&'static str, &'static str>,
}

impl Resolved<'_> {
    fn tag(v: &Value) -> Option<(String, &Value)> {
        match v {
            Value::Tagged(t) => Some((
                t.tag.to_string().trim_start_matches('!').to_string(),
                &t.value,
            )),
            Value::Mapping(m) if m.len() == 1 => {
                let (k, v) = m.iter().next()?;
                let k = k.as_str()?;
                k.starts_with("Fn::")
                    .then(|| (k.trim_start_matches("Fn::").to_string(), v))
            }
            _ => None,
        }
    }

    fn param(&self, name: &str) -> String {
        self.params
            .get(name)
            .map(|s| s.to_string())
            .or_else(|| {
                self.t["Parameters"][name]["Default"]
                    .as_str()
                    .map(String::from)
            })
            .unwrap_or_default()
    }

    fn condition(&self, name: &str) -> bool {
        self.eval_bool(&self.t["Conditions"][name])
    }

    fn eval_bool(&self, v: &Value) -> bool {
        let (tag, arg) = Self::tag(v).unwrap_or_else(|| panic!("condition {v:?}"));
        let args = arg.as_sequence();
        match tag.as_str() {
            "Equals" => {
                let a = args.expect("Equals args");
                self.scalar(&a[0]) == self.scalar(&a[1])
            }
            "Not" => !self.eval_bool(&args.expect("Not args")[0]),
            "Condition" => self.condition(arg.as_str().expect("condition name")),
            other => panic!("condition function {other}"),
        }
    }

    fn scalar(&self, v: &Value) -> String {
        match Self::tag(v) {
            Some((t, a)) if t == "Ref" => self.param(a.as_str().expect("ref")),
            _ => v.as_str().map(String::from).unwrap_or_default(),
        }
    }

    /// `v` with every `!If` resolved.
    fn resolve(&self, v: &Value) -> Value {
        if let Some((t, a)) = Self::tag(v) {
            if t == "If" {
                let a = a.as_sequence().expect("If args");
                let branch = if self.condition(a[0].as_str().expect("If condition")) {
                    &a[1]
                } else {
                    &a[2]
                };
                return self.resolve(branch);
            }
        }
        match v {
            Value::Sequence(s) => Value::Sequence(s.iter().map(|x| self.resolve(x)).collect()),
            Value::Mapping(m) => Value::Mapping(
                m.iter()
                    .map(|(k, x)| (k.clone(), self.resolve(x)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    /// The resource `id`, if it exists under these parameters.
    fn resource(&self, id: &str) -> Option<Value> {
        let r = self.t["Resources"].get(id)?;
        if let Some(c) = r.get("Condition").and_then(Value::as_str) {
            if !self.condition(c) {
                return None;
            }
        }
        Some(self.resolve(r))
    }

    fn resources(&self) -> Vec<(String, Value)> {
        self.t["Resources"]
            .as_mapping()
            .expect("Resources")
            .keys()
            .filter_map(|k| k.as_str())
            .filter_map(|k| self.resource(k).map(|r| (k.to_string(), r)))
            .collect()
    }

    /// The logical id a `!Ref` / `!GetAtt` names.
    fn target(v: &Value) -> Option<String> {
        let (t, a) = Self::tag(v)?;
        match t.as_str() {
            "Ref" => a.as_str().map(String::from),
            "GetAtt" => a
                .as_str()
                .map(|s| s.split('.').next().unwrap_or(s).to_string())
                .or_else(|| {
                    a.as_sequence()
                        .and_then(|s| s[0].as_str().map(String::from))
                }),
            _ => None,
        }
    }
}

/// Function crates whose code speaks SMTP to organisations' servers.
fn smtp_binaries() -> Vec<String> {
    let mut out = Vec::new();
    for dir in ["functions/inbound", "functions/monitor", "functions/api"] {
        let src = root().join(dir).join("src");
        let mut text = String::new();
        let mut stack = vec![src];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).expect("dir").flatten() {
                if e.path().is_dir() {
                    stack.push(e.path());
                } else {
                    text.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
                }
            }
        }
        let smtp = text.contains("SmtpRelay") || text.contains("SmtpProbeSender");
        if smtp {
            match dir {
                "functions/inbound" => out.extend(["inbound".to_string(), "queue".to_string()]),
                d => out.push(d.trim_start_matches("functions/").to_string()),
            }
        }
    }
    out
}

/// Every problem of the egress under `params`.
fn egress_problems(t: &Value, params: BTreeMap<&'static str, &'static str>) -> Vec<String> {
    let r = Resolved { t, params };
    let mut problems = Vec::new();
    let globals_vpc = r.resolve(&t["Globals"]["Function"]["VpcConfig"]);
    let resources = r.resources();
    let functions: BTreeMap<String, (String, Value)> = resources
        .iter()
        .filter(|(_, v)| v["Type"].as_str() == Some("AWS::Serverless::Function"))
        .filter_map(|(id, v)| {
            let bin = v["Metadata"]["BuildProperties"]["Binary"]
                .as_str()?
                .to_string();
            Some((bin, (id.clone(), v.clone())))
        })
        .collect();
    // Route tables: which route each has for 0.0.0.0/0, and which subnets use it.
    let route_of = |table: &str| -> Option<Value> {
        resources.iter().find_map(|(_, v)| {
            (v["Type"].as_str() == Some("AWS::EC2::Route")
                && Resolved::target(&v["Properties"]["RouteTableId"]).as_deref() == Some(table)
                && v["Properties"]["DestinationCidrBlock"].as_str() == Some("0.0.0.0/0"))
            .then(|| v["Properties"].clone())
        })
    };
    let table_of = |subnet: &str| -> Option<String> {
        resources.iter().find_map(|(_, v)| {
            (v["Type"].as_str() == Some("AWS::EC2::SubnetRouteTableAssociation")
                && Resolved::target(&v["Properties"]["SubnetId"]).as_deref() == Some(subnet))
            .then(|| Resolved::target(&v["Properties"]["RouteTableId"]))
            .flatten()
        })
    };
    let has_eip = |id: &str, kind: &str| -> bool {
        resources.iter().any(|(eip_id, v)| {
            v["Type"].as_str() == Some("AWS::EC2::EIP")
                && match kind {
                    "nat" => {
                        r.resource(id)
                            .and_then(|n| Resolved::target(&n["Properties"]["AllocationId"]))
                            .as_deref()
                            == Some(eip_id.as_str())
                    }
                    _ => Resolved::target(&v["Properties"]["InstanceId"]).as_deref() == Some(id),
                }
        })
    };
    let endpoints: Vec<(String, Vec<String>)> = resources
        .iter()
        .filter(|(_, v)| v["Type"].as_str() == Some("AWS::EC2::VPCEndpoint"))
        .filter(|(_, v)| v["Properties"]["VpcEndpointType"].as_str() == Some("Gateway"))
        .map(|(_, v)| {
            let svc = format!("{:?}", v["Properties"]["ServiceName"]);
            let tables = v["Properties"]["RouteTableIds"]
                .as_sequence()
                .map(|s| s.iter().filter_map(Resolved::target).collect())
                .unwrap_or_default();
            (svc, tables)
        })
        .collect();
    for bin in smtp_binaries() {
        let Some((id, f)) = functions.get(&bin) else {
            problems.push(format!("no function builds {bin}"));
            continue;
        };
        let vpc = if f["Properties"]["VpcConfig"].is_null() {
            globals_vpc.clone()
        } else {
            f["Properties"]["VpcConfig"].clone()
        };
        let subnets: Vec<String> = vpc["SubnetIds"]
            .as_sequence()
            .map(|s| s.iter().filter_map(Resolved::target).collect())
            .unwrap_or_default();
        if subnets.len() < 2 {
            problems.push(format!("{id} ({bin}) speaks SMTP but has no VPC subnets of the stack in two zones: {vpc:?}"));
        }
        for s in &subnets {
            let Some(table) = table_of(s) else {
                problems.push(format!("{id}: subnet {s} has no route table"));
                continue;
            };
            match route_of(&table) {
                Some(route) if !route["NatGatewayId"].is_null() => {
                    let nat = Resolved::target(&route["NatGatewayId"]).unwrap_or_default();
                    if !has_eip(&nat, "nat") {
                        problems.push(format!("{id}: NAT gateway {nat} of {s} has no Elastic IP"));
                    }
                }
                Some(route) if !route["InstanceId"].is_null() => {
                    let inst = Resolved::target(&route["InstanceId"]).unwrap_or_default();
                    if !has_eip(&inst, "instance") {
                        problems.push(format!(
                            "{id}: NAT instance {inst} of {s} has no Elastic IP"
                        ));
                    }
                }
                other => problems.push(format!(
                    "{id}: subnet {s}'s default route is not a NAT: {other:?}"
                )),
            }
            for svc in ["s3", "dynamodb"] {
                if !endpoints.iter().any(|(name, tables)| {
                    name.contains(&format!(".{svc}")) && tables.contains(&table)
                }) {
                    problems.push(format!(
                        "{id}: {svc} is not reached through a gateway endpoint on {table}"
                    ));
                }
            }
        }
    }
    problems
}

#[test]
fn every_smtp_speaking_function_leaves_through_a_nat_with_an_elastic_ip() {
    let t = template();
    let bins = smtp_binaries();
    assert!(
        bins.contains(&"inbound".to_string()) && bins.contains(&"monitor".to_string()),
        "{bins:?}"
    );
    for mode in ["NatGateway", "NatInstance"] {
        let problems = egress_problems(&t, BTreeMap::from([("EgressMode", mode)]));
        assert!(
            problems.is_empty(),
            "EgressMode {mode}:\n- {}",
            problems.join("\n- ")
        );
    }
}

#[test]
fn a_function_outside_the_vpc_or_a_nat_without_an_elastic_ip_is_reported() {
    let mut t = template();
    // The NAT gateway of zone B loses its Elastic IP, and the queue leaves the VPC.
    t["Resources"]["NatGatewayB"]["Properties"]
        .as_mapping_mut()
        .expect("NatGatewayB")
        .remove("AllocationId");
    t["Resources"]["QueueFunction"]["Properties"]["VpcConfig"] =
        serde_norway::from_str("{SubnetIds: [], SecurityGroupIds: []}").expect("yaml");
    let problems = egress_problems(&t, BTreeMap::from([("EgressMode", "NatGateway")]));
    assert!(
        problems
            .iter()
            .any(|p| p.contains("NatGatewayB") && p.contains("Elastic IP")),
        "{problems:?}"
    );
    assert!(
        problems.iter().any(|p| p.contains("QueueFunction (queue)")),
        "{problems:?}"
    );
    // Without the DynamoDB endpoint, DynamoDB traffic would pay NAT charges.
    let mut t = template();
    t["Resources"]
        .as_mapping_mut()
        .expect("Resources")
        .remove("DynamoDbGatewayEndpoint");
    let problems = egress_problems(&t, BTreeMap::from([("EgressMode", "NatInstance")]));
    assert!(
        problems
            .iter()
            .any(|p| p.contains("dynamodb is not reached")),
        "{problems:?}"
    );
}

/// `${Name}` in a `!Sub` string replaced: pseudo parameters by fixed values, parameters by
/// `r`'s values.
fn substitute(r: &Resolved, v: &Value) -> String {
    let s = match Resolved::tag(v) {
        Some((t, a)) if t == "Sub" => a.as_str().expect("Sub string").to_string(),
        _ => return r.scalar(v),
    };
    let mut out = String::new();
    let mut rest = s.as_str();
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let end = rest[i..].find('}').expect("closing brace") + i;
        let name = &rest[i + 2..end];
        out.push_str(&match name {
            "AWS::Partition" => "aws".to_string(),
            "AWS::Region" => "eu-west-1".to_string(),
            "AWS::AccountId" => "123456789012".to_string(),
            other => r.param(other),
        });
        rest = &rest[end + 1..];
    }
    out + rest
}

/// IAM's `*` and `?` wildcards (StringLike, resources).
fn glob(pattern: &str, s: &str) -> bool {
    let (p, s): (Vec<char>, Vec<char>) = (pattern.chars().collect(), s.chars().collect());
    fn go(p: &[char], s: &[char]) -> bool {
        match (p.first(), s.first()) {
            (None, None) => true,
            (Some('*'), _) => go(&p[1..], s) || (!s.is_empty() && go(p, &s[1..])),
            (Some('?'), Some(_)) => go(&p[1..], &s[1..]),
            (Some(a), Some(b)) => a == b && go(&p[1..], &s[1..]),
            _ => false,
        }
    }
    go(&p, &s)
}

/// Whether the policies of function `id` let it call `ses:SendRawEmail` with `from` as the
/// From address on the SES identity `identity`: an Allow matches and no Deny does (IAM's
/// evaluation for one principal, the operators and keys this template uses).
fn may_send(r: &Resolved, id: &str, from: &str, identity: &str) -> bool {
    let f = r.resource(id).expect("function");
    let arn = format!("arn:aws:ses:eu-west-1:123456789012:identity/{identity}");
    let list = |v: &Value| -> Vec<String> {
        match v {
            Value::Sequence(s) => s.iter().map(|x| substitute(r, x)).collect(),
            other => vec![substitute(r, other)],
        }
    };
    let statements: Vec<Value> = f["Properties"]["Policies"]
        .as_sequence()
        .expect("Policies")
        .iter()
        .filter_map(|p| p["Statement"].as_sequence().cloned())
        .flatten()
        .collect();
    let matches = |st: &Value| -> bool {
        let action = list(&st["Action"])
            .iter()
            .any(|a| glob(a, "ses:SendRawEmail"));
        let resource = list(&st["Resource"]).iter().any(|p| glob(p, &arn));
        let conditions = st["Condition"]
            .as_mapping()
            .into_iter()
            .flatten()
            .all(|(op, keys)| {
                let values = list(&keys["ses:FromAddress"]);
                match op.as_str().expect("operator") {
                    "StringEquals" => values.iter().any(|v| v == from),
                    "StringNotEquals" => values.iter().all(|v| v != from),
                    "StringLike" => values.iter().any(|v| glob(v, from)),
                    "StringNotLike" => values.iter().all(|v| !glob(v, from)),
                    other => panic!("condition operator {other}"),
                }
            });
        action && resource && conditions
    };
    let effect = |e: &str| {
        statements
            .iter()
            .any(|st| st["Effect"].as_str() == Some(e) && matches(st))
    };
    effect("Allow") && !effect("Deny")
}

#[test]
fn the_api_sends_as_users_and_as_the_alert_sender_for_codes_never_otherwise_as_the_service() {
    let t = template();
    for (sender, alerts) in [
        ("", "alerts@continuity.example"),
        ("ops@acme.example", "ops@acme.example"),
    ] {
        let r = Resolved {
            t: &t,
            params: BTreeMap::from([
                ("ReceivingDomain", "continuity.example"),
                ("AlertSender", sender),
            ]),
        };
        // Users of a proven domain send from the Online Inbox (U3); sign-in codes (U11).
        assert!(may_send(
            &r,
            "ApiFunction",
            "ann@acme.example",
            "acme.example"
        ));
        assert!(may_send(&r, "ApiFunction", alerts, "continuity.example"));
        assert!(may_send(
            &r,
            "MonitorFunction",
            alerts,
            "continuity.example"
        ));
        // Never the bounce address or another name at the service's domain, whatever identity.
        for from in ["mailer-daemon@continuity.example", "it@continuity.example"] {
            assert!(
                !may_send(&r, "ApiFunction", from, "continuity.example"),
                "{from}"
            );
            assert!(!may_send(&r, "ApiFunction", from, "acme.example"), "{from}");
        }
        // The monitor sends alerts only.
        assert!(!may_send(
            &r,
            "MonitorFunction",
            "ann@acme.example",
            "acme.example"
        ));
    }
}
