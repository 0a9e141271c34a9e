//! `[[route]]`, `[env.NAME]`, `[vcs]` and `[credentials.NAME]`: where modules are fetched
//! from, compiled into the one [`RouteTable`] the front end and `goproxy-ha route explain`
//! both use.

use goproxy_routing::{RouteTable, UpstreamList};

use super::Config;

impl Config {
    /// The compiled route table (`[proxy] upstream` as the default route).
    pub fn route_table(&self) -> Result<RouteTable, Vec<String>> {
        let mut problems = self.credentials_on_proxies();
        problems.extend(self.route_databases());
        problems.extend(self.direct_defaults());
        problems.extend(goproxy_vcs::config::credential_problems(&self.credentials));
        problems.extend(self.vcs.problems());
        let known = |name: &str| self.credentials.contains_key(name);
        match RouteTable::build(
            &self.proxy.upstream,
            &self.routes,
            &self.environments,
            &known,
        ) {
            Ok(table) if problems.is_empty() => Ok(table),
            Ok(_) => Err(problems),
            Err(more) => {
                problems.extend(more);
                Err(problems)
            }
        }
    }

    /// A rule's `sumdb` names a configured database (or is `off`).
    fn route_databases(&self) -> Vec<String> {
        let mut rules: Vec<(String, &goproxy_routing::RouteSpec)> = Vec::new();
        for (i, route) in self.routes.iter().enumerate() {
            rules.push((format!("route[{i}]"), route));
        }
        for (name, env) in &self.environments {
            for (i, route) in env.routes.iter().enumerate() {
                rules.push((format!("env.{name}.route[{i}]"), route));
            }
        }
        let served: Vec<&str> = self.proxy.sumdb.iter().map(|d| d.name.as_str()).collect();
        rules
            .into_iter()
            .filter_map(|(at, route)| {
                let name = route.sumdb.as_deref()?;
                (name != "off" && !name.is_empty() && !served.contains(&name)).then(|| {
                    format!(
                        "{at}.sumdb: no [[proxy.sumdb]] named {name:?} (configured: {}); or \"off\"",
                        if served.is_empty() { "none".to_string() } else { served.join(", ") }
                    )
                })
            })
            .collect()
    }

    /// `direct` only for paths a rule names: in a default route it would fetch any path anyone
    /// asks for, from whatever host that path's `go-import` tag names (an outsider's tag can
    /// name internal hosts).
    fn direct_defaults(&self) -> Vec<String> {
        let mut lists = vec![("proxy.upstream".to_string(), Some(&self.proxy.upstream))];
        for (name, env) in &self.environments {
            lists.push((format!("env.{name}.upstream"), env.upstream.as_ref()));
        }
        lists
            .into_iter()
            .filter_map(|(at, list)| {
                let list = UpstreamList::parse(list?).ok()?;
                list.has_direct().then(|| {
                    format!("{at}: \"direct\" is allowed only in a [[route]] that names the paths to fetch from version control (in a default route, anyone could make this node clone from any host a go-import tag names)")
                })
            })
            .collect()
    }

    /// Credential sets are for `direct` fetching; a rule naming one on a list without
    /// `direct` would silently fetch anonymously.
    fn credentials_on_proxies(&self) -> Vec<String> {
        let mut rules = Vec::new();
        for (i, route) in self.routes.iter().enumerate() {
            rules.push((format!("route[{i}]"), route));
        }
        for (name, env) in &self.environments {
            for (i, route) in env.routes.iter().enumerate() {
                rules.push((format!("env.{name}.route[{i}]"), route));
            }
        }
        rules
            .into_iter()
            .filter(|(_, r)| r.credentials.is_some())
            .filter_map(|(at, r)| {
                let list = UpstreamList::parse(r.upstream.as_deref()?).ok()?;
                (!list.has_direct()).then(|| {
                    format!("{at}.credentials: credential sets are used by \"direct\" only; a proxy's credentials go in its URL (user:password@, redacted everywhere)")
                })
            })
            .collect()
    }
}
