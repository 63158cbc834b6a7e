//! The template's egress (I6, issue 11): for each `EgressMode` that creates the VPC, every
//! function that speaks SMTP to organisations (found in the code: it names the SMTP relay or the
//! probe sender) runs in private subnets whose default route is a NAT gateway with an Elastic IP
//! or a NAT instance with one, and S3 and DynamoDB are reached through gateway endpoints on those
//! subnets' route tables. And who may do what (issue 12), the functions' IAM statements evaluated
//! as IAM does for one principal (an Allow matches and no Deny does): who may send as whom through
//! SES; `sns:Publish` reaches phone numbers only, never a topic or endpoint; each secret is read
//! only by the functions whose code reads it (the link-signing key by the functions that sign or
//! verify links, a probe credential only under its derived name); `kms:Decrypt` only through
//! Secrets Manager for the link-signing secret; and the link-signing secret's resource policy
//! denies every other principal. Reads `infra/template.yaml` offline, resolving `!If`, `!Ref`,
//! `!Sub`, `!GetAtt` and conditions for the parameters (SAM's Globals merged into each function,
//! as the transform does; a resource's ARN is a stand-in built from its logical id).

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

/// The sources under `dir` (relative to the root), concatenated.
fn code_of(dir: &str) -> String {
    let mut text = String::new();
    let mut stack = vec![root().join(dir)];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("dir").flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else if e.path().extension().is_some_and(|x| x == "rs") {
                text.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
            }
        }
    }
    text
}

/// Function crates whose code speaks SMTP to organisations' servers.
fn smtp_binaries() -> Vec<String> {
    let mut out = Vec::new();
    for dir in ["functions/inbound", "functions/monitor", "functions/api"] {
        let text = code_of(&format!("{dir}/src"));
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
            other if r.t["Parameters"].get(other).is_some() => r.param(other),
            other => arn_of(r, other.split('.').next().unwrap_or(other)),
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

/// The stand-in ARN of resource `id` (SAM's generated role of a function: `<Function>Role`).
fn arn_of(r: &Resolved, id: &str) -> String {
    match r.t["Resources"][id]["Type"].as_str() {
        Some("AWS::SecretsManager::Secret") => {
            format!("arn:aws:secretsmanager:eu-west-1:123456789012:secret:{id}-AbCdEf")
        }
        Some("AWS::KMS::Key") => format!("arn:aws:kms:eu-west-1:123456789012:key/{id}"),
        Some("AWS::SNS::Topic") => format!("arn:aws:sns:eu-west-1:123456789012:{id}"),
        None if id.ends_with("Role") => format!("arn:aws:iam::123456789012:role/{id}"),
        _ => format!("arn:aws:cloudformation:eu-west-1:123456789012:{id}"),
    }
}

/// A value as IAM sees it: `!Sub` substituted, `!Ref` of a parameter its value and of a
/// resource its ARN, `!GetAtt X.Arn` X's ARN; a list, each.
fn values(r: &Resolved, v: &Value) -> Vec<String> {
    if let Value::Sequence(s) = v {
        return s.iter().flat_map(|x| values(r, x)).collect();
    }
    let one = match Resolved::tag(v) {
        Some((t, _)) if t == "Sub" => substitute(r, v),
        Some((t, a)) if t == "Ref" => {
            let name = a.as_str().expect("Ref name");
            if r.t["Parameters"].get(name).is_some() {
                r.param(name)
            } else {
                arn_of(r, name)
            }
        }
        Some((t, _)) if t == "GetAtt" => arn_of(r, &Resolved::target(v).expect("GetAtt")),
        _ => match v {
            Value::String(s) => s.clone(),
            Value::Null => return Vec::new(),
            other => serde_norway::to_string(other)
                .unwrap_or_default()
                .trim()
                .to_string(),
        },
    };
    vec![one]
}

/// Whether a statement's `Condition` holds for the request's context keys `ctx` (a key the
/// request lacks makes a positive operator false and a negated one true, as in IAM).
fn condition_holds(r: &Resolved, st: &Value, ctx: &[(&str, &str)]) -> bool {
    st["Condition"]
        .as_mapping()
        .into_iter()
        .flatten()
        .all(|(op, keys)| {
            let op = op.as_str().expect("operator");
            keys.as_mapping().into_iter().flatten().all(|(key, vals)| {
                let key = key.as_str().expect("condition key");
                let vals = values(r, vals);
                let actual = ctx
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(key))
                    .map(|(_, v)| *v);
                let Some(a) = actual else {
                    return op.contains("Not");
                };
                match op {
                    "StringEquals" => vals.iter().any(|v| v == a),
                    "StringNotEquals" => vals.iter().all(|v| v != a),
                    "StringLike" | "ArnEquals" | "ArnLike" => vals.iter().any(|v| glob(v, a)),
                    "StringNotLike" | "ArnNotEquals" | "ArnNotLike" => {
                        vals.iter().all(|v| !glob(v, a))
                    }
                    other => panic!("condition operator {other}"),
                }
            })
        })
}

/// Whether statement `st` applies to `action` on `resource` with context `ctx` (and, for a
/// resource policy, to `principal`).
fn applies(
    r: &Resolved,
    st: &Value,
    principal: Option<&str>,
    action: &str,
    resource: &str,
    ctx: &[(&str, &str)],
) -> bool {
    let action = action.to_ascii_lowercase();
    let any_action = |v: &Value| {
        values(r, v)
            .iter()
            .any(|a| glob(&a.to_ascii_lowercase(), &action))
    };
    let any_resource = |v: &Value| values(r, v).iter().any(|p| glob(p, resource));
    let action_ok = if st["NotAction"].is_null() {
        any_action(&st["Action"])
    } else {
        !any_action(&st["NotAction"])
    };
    let resource_ok = if st["NotResource"].is_null() {
        any_resource(&st["Resource"])
    } else {
        !any_resource(&st["NotResource"])
    };
    let principal_ok = match principal {
        None => true,
        Some(p) => match &st["Principal"] {
            Value::String(s) => s == "*",
            other => values(r, &other["AWS"])
                .iter()
                .any(|x| x == "*" || glob(x, p)),
        },
    };
    action_ok && resource_ok && principal_ok && condition_holds(r, st, ctx)
}

/// The statements of function `id`'s inline policies (an `!If` resolved to nothing is left out);
/// a policy of another form (a managed policy, a SAM policy template) is a problem here: this
/// evaluation could not see what it grants.
fn statements(r: &Resolved, id: &str, problems: &mut Vec<String>) -> Vec<Value> {
    let f = r.resource(id).expect("function");
    let mut out = Vec::new();
    for p in f["Properties"]["Policies"]
        .as_sequence()
        .into_iter()
        .flatten()
    {
        let Some(list) = p["Statement"].as_sequence() else {
            problems.push(format!("{id}: a policy this test cannot evaluate: {p:?}"));
            continue;
        };
        out.extend(list.iter().filter(|st| st["Effect"].is_string()).cloned());
    }
    out
}

/// IAM's answer for function `id`'s role: an Allow statement applies and no Deny does.
fn allowed(r: &Resolved, id: &str, action: &str, resource: &str, ctx: &[(&str, &str)]) -> bool {
    let sts = statements(r, id, &mut Vec::new());
    let effect = |e: &str| {
        sts.iter().any(|st| {
            st["Effect"].as_str() == Some(e) && applies(r, st, None, action, resource, ctx)
        })
    };
    effect("Allow") && !effect("Deny")
}

/// Whether the policies of function `id` let it call `ses:SendRawEmail` with `from` as the
/// From address on the SES identity `identity`.
fn may_send(r: &Resolved, id: &str, from: &str, identity: &str) -> bool {
    let arn = format!("arn:aws:ses:eu-west-1:123456789012:identity/{identity}");
    allowed(
        r,
        id,
        "ses:SendRawEmail",
        &arn,
        &[("ses:FromAddress", from)],
    )
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

/// The functions of the template under `r`: (logical id, binary, the crate's code).
fn functions(r: &Resolved) -> Vec<(String, String, String)> {
    r.resources()
        .into_iter()
        .filter(|(_, v)| v["Type"].as_str() == Some("AWS::Serverless::Function"))
        .map(|(id, v)| {
            let bin = v["Metadata"]["BuildProperties"]["Binary"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let dir = match bin.as_str() {
                "queue" => "inbound".to_string(),
                b => b.to_string(),
            };
            (id, bin, code_of(&format!("functions/{dir}/src")))
        })
        .collect()
}

/// Whether function `id` is given environment variable `name`, non-empty.
fn has_env(r: &Resolved, id: &str, name: &str) -> bool {
    let f = r.resource(id).expect("function");
    let v = &f["Properties"]["Environment"]["Variables"][name];
    !v.is_null() && values(r, v).iter().any(|x| !x.is_empty())
}

const PHONE: &str = "+447700900123";
const REGION_SM: &str = "secretsmanager.eu-west-1.amazonaws.com";

/// Every way the template's IAM grants more than the code uses, under `params`.
fn privilege_problems(t: &Value, params: BTreeMap<&'static str, &'static str>) -> Vec<String> {
    let r = Resolved { t, params };
    let mut problems = Vec::new();
    let fns = functions(&r);
    let of_type = |ty: &str| -> Vec<String> {
        r.resources()
            .into_iter()
            .filter(|(_, v)| v["Type"].as_str() == Some(ty))
            .map(|(id, _)| id)
            .collect()
    };
    for (id, _, _) in &fns {
        statements(&r, id, &mut problems);
    }

    // SNS: SMS to phone numbers for the functions that send SMS; no topic or endpoint for
    // anyone (no code publishes to one: if some code does, except that topic and name it here).
    let shared_code = code_of("shared/src");
    if shared_code.contains(".topic_arn(") || shared_code.contains(".target_arn(") {
        problems.push("code publishes to an SNS topic: except that topic alone".into());
    }
    let mut topics: Vec<String> = of_type("AWS::SNS::Topic")
        .iter()
        .map(|id| arn_of(&r, id))
        .collect();
    topics.push("arn:aws:sns:us-east-1:999999999999:someone-elses-topic".into());
    topics.push("arn:aws:sns:eu-west-1:123456789012:endpoint/GCM/app/0123".into());
    for (id, _, code) in &fns {
        let sends_sms = code.contains("AwsChannels");
        if allowed(&r, id, "sns:Publish", PHONE, &[]) != sends_sms {
            problems.push(format!(
                "{id}: may publish SMS: {}, sends SMS: {sends_sms}",
                !sends_sms
            ));
        }
        for topic in &topics {
            if allowed(&r, id, "sns:Publish", topic, &[]) {
                problems.push(format!("{id} may publish to {topic}"));
            }
        }
    }

    // Secrets: each read by the functions given its name, nothing else readable.
    let prefix = r.param("ProbeSecretPrefix");
    let secret =
        |name: &str| format!("arn:aws:secretsmanager:eu-west-1:123456789012:secret:{name}");
    let stack_secrets: Vec<String> = of_type("AWS::SecretsManager::Secret")
        .iter()
        .map(|id| arn_of(&r, id))
        .collect();
    let mut samples: Vec<(String, Option<&str>)> = stack_secrets
        .iter()
        .map(|arn| (arn.clone(), Some("LINK_KEYS_SECRET")))
        .collect();
    samples.extend([
        (
            secret(&format!("{prefix}acme/probe-AbCdEf")),
            Some("PROBE_SECRET_PREFIX"),
        ),
        (secret(&format!("{prefix}acme/other-AbCdEf")), None),
        (secret(&format!("{prefix}acme/probe-archive-AbCdEf")), None),
        (secret(&format!("{prefix}link-signing-key-AbCdEf")), None),
        (secret("prod/db-password-AbCdEf"), None),
    ]);
    let cert = r.param("SmtpClientCertificateSecret");
    if !cert.is_empty() {
        samples.push((cert.clone(), Some("SMTP_CLIENT_CERT_SECRET")));
    }
    for (id, _, _) in &fns {
        for (arn, reader_env) in &samples {
            let expected = reader_env.is_some_and(|e| has_env(&r, id, e));
            if allowed(&r, id, "secretsmanager:GetSecretValue", arn, &[]) != expected {
                problems.push(format!("{id}: may read {arn}: {}", !expected));
            }
        }
        // Every grant names its secrets: a secret of the stack, the certificate's parameter, or
        // the derived probe names; never a wider pattern.
        let probe_pattern =
            format!("arn:aws:secretsmanager:eu-west-1:123456789012:secret:{prefix}*/probe-??????");
        for st in statements(&r, id, &mut Vec::new()) {
            if st["Effect"].as_str() != Some("Allow")
                || !applies_to_action(&r, &st, "secretsmanager:GetSecretValue")
            {
                continue;
            }
            for res in values(&r, &st["Resource"]) {
                if !(res == probe_pattern
                    || stack_secrets.contains(&res)
                    || (!cert.is_empty() && res == cert))
                {
                    problems.push(format!("{id}: secrets read through the pattern {res}"));
                }
            }
            if !st["NotResource"].is_null() {
                problems.push(format!("{id}: secrets read through NotResource"));
            }
        }
    }

    // KMS: the service key decrypts only through Secrets Manager, only the link-signing secret.
    let link = arn_of(&r, "LinkSigningSecret");
    for key in of_type("AWS::KMS::Key").iter().map(|k| arn_of(&r, k)) {
        for (id, _, _) in &fns {
            let reads_link = has_env(&r, id, "LINK_KEYS_SECRET");
            let via = |secret: &str| {
                allowed(
                    &r,
                    id,
                    "kms:Decrypt",
                    &key,
                    &[
                        ("kms:ViaService", REGION_SM),
                        ("kms:EncryptionContext:SecretARN", secret),
                    ],
                )
            };
            if via(&link) != reads_link {
                problems.push(format!(
                    "{id}: may decrypt the link secret: {}",
                    !reads_link
                ));
            }
            if via(&secret("prod/db-password-AbCdEf")) {
                problems.push(format!("{id}: may decrypt other secrets with {key}"));
            }
            if allowed(&r, id, "kms:Decrypt", &key, &[]) {
                problems.push(format!(
                    "{id}: may decrypt with {key} outside Secrets Manager"
                ));
            }
        }
    }

    // The link-signing secret's resource policy: every principal but the readers is denied.
    let policies: Vec<Value> = r
        .resources()
        .into_iter()
        .filter(|(_, v)| v["Type"].as_str() == Some("AWS::SecretsManager::ResourcePolicy"))
        .map(|(_, v)| v["Properties"].clone())
        .filter(|p| values(&r, &p["SecretId"]) == [link.clone()])
        .collect();
    match policies.as_slice() {
        [p] => {
            if p["BlockPublicPolicy"].as_bool() != Some(true) {
                problems.push("the link secret's policy does not block public policies".into());
            }
            let sts: Vec<Value> = p["ResourcePolicy"]["Statement"]
                .as_sequence()
                .cloned()
                .unwrap_or_default();
            let mut principals: Vec<(String, bool)> = fns
                .iter()
                .map(|(id, _, _)| {
                    (
                        arn_of(&r, &format!("{id}Role")),
                        has_env(&r, id, "LINK_KEYS_SECRET"),
                    )
                })
                .collect();
            principals.push(("arn:aws:iam::123456789012:role/Administrator".into(), false));
            principals.push(("arn:aws:iam::123456789012:root".into(), false));
            principals.push(("arn:aws:iam::123456789012:user/deployer".into(), false));
            for (who, reader) in principals {
                let denied = sts.iter().any(|st| {
                    st["Effect"].as_str() == Some("Deny")
                        && applies(
                            &r,
                            st,
                            Some(&who),
                            "secretsmanager:GetSecretValue",
                            &link,
                            &[("aws:PrincipalArn", &who)],
                        )
                });
                if denied == reader {
                    problems.push(format!("the link secret's policy: {who} denied: {denied}"));
                }
            }
        }
        other => problems.push(format!(
            "the link secret needs one resource policy, found {}",
            other.len()
        )),
    }
    problems
}

/// Whether statement `st` names `action` (by `Action` or by leaving it out of `NotAction`).
fn applies_to_action(r: &Resolved, st: &Value, action: &str) -> bool {
    let a = action.to_ascii_lowercase();
    let named = |v: &Value| {
        values(r, v)
            .iter()
            .any(|x| glob(&x.to_ascii_lowercase(), &a))
    };
    if st["NotAction"].is_null() {
        named(&st["Action"])
    } else {
        !named(&st["NotAction"])
    }
}

const CERT: &str = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:smtp-client-cert-AbCdEf";

#[test]
fn sns_publish_secret_reads_and_decrypts_are_least_privilege() {
    let t = template();
    for params in [
        BTreeMap::new(),
        BTreeMap::from([("SmtpClientCertificateSecret", CERT)]),
    ] {
        let problems = privilege_problems(&t, params.clone());
        assert!(
            problems.is_empty(),
            "{params:?}:\n- {}",
            problems.join("\n- ")
        );
    }
    // What the code needs still works.
    let r = Resolved {
        t: &t,
        params: BTreeMap::new(),
    };
    for id in ["MonitorFunction", "ApiFunction"] {
        assert!(allowed(&r, id, "sns:Publish", PHONE, &[]), "{id} sends SMS");
        let link = arn_of(&r, "LinkSigningSecret");
        assert!(
            allowed(&r, id, "secretsmanager:GetSecretValue", &link, &[]),
            "{id}"
        );
    }
}

/// `fn_id`'s statement `sid` in `t`, to change.
fn statement_mut<'a>(t: &'a mut Value, fn_id: &str, sid: &str) -> &'a mut Value {
    t["Resources"][fn_id]["Properties"]["Policies"][0]["Statement"]
        .as_sequence_mut()
        .expect("statements")
        .iter_mut()
        .find(|st| st["Sid"].as_str() == Some(sid))
        .unwrap_or_else(|| panic!("{fn_id} {sid}"))
}

#[test]
fn a_widened_publish_secret_read_decrypt_or_secret_policy_is_reported() {
    let problems_after = |change: &dyn Fn(&mut Value)| {
        let mut t = template();
        change(&mut t);
        privilege_problems(&t, BTreeMap::new())
    };
    let reported = |problems: Vec<String>, says: &[&str]| {
        assert!(
            problems.iter().any(|p| says.iter().all(|s| p.contains(s))),
            "{says:?} in {problems:?}"
        );
    };
    // The monitor's probe secrets widened to everything under the prefix.
    reported(
        problems_after(&|t| {
            statement_mut(t, "MonitorFunction", "ProbeCredentials")["Resource"] =
                serde_norway::from_str(
                    r#"!Sub "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:${ProbeSecretPrefix}*""#,
                )
                .expect("yaml");
        }),
        &["MonitorFunction", "acme/other"],
    );
    // Any secret for the queue.
    reported(
        problems_after(&|t| {
            let sts = t["Resources"]["QueueFunction"]["Properties"]["Policies"][0]["Statement"]
                .as_sequence_mut()
                .expect("statements");
            sts.push(
                serde_norway::from_str(
                    "{Effect: Allow, Action: 'secretsmanager:*', Resource: '*'}",
                )
                .expect("yaml"),
            );
        }),
        &["QueueFunction", "prod/db-password"],
    );
    // The API's deny of topics dropped: it could publish to the alarm topic.
    reported(
        problems_after(&|t| {
            statement_mut(t, "ApiFunction", "NoTopicPublish")["Effect"] = "Allow".into();
        }),
        &["ApiFunction may publish to", "AlarmTopic"],
    );
    // The decrypt's secret condition dropped: any secret under the service key.
    reported(
        problems_after(&|t| {
            statement_mut(t, "MonitorFunction", "LinkSigningKeyDecrypt")["Condition"]
                ["StringEquals"]
                .as_mapping_mut()
                .expect("StringEquals")
                .remove("kms:EncryptionContext:SecretARN");
        }),
        &["MonitorFunction", "decrypt other secrets"],
    );
    // The link secret's policy admits the inbound function too.
    reported(
        problems_after(&|t| {
            t["Resources"]["LinkSigningSecretPolicy"]["Properties"]["ResourcePolicy"]["Statement"]
                [0]["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]
                .as_sequence_mut()
                .expect("principals")
                .push(serde_norway::from_str("!GetAtt InboundFunctionRole.Arn").expect("yaml"));
        }),
        &["InboundFunctionRole denied: false"],
    );
}
