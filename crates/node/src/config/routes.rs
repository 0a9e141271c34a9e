//! `[[route]]` and `[env.NAME]`: where modules are fetched from, compiled into the one
//! [`RouteTable`] the front end and `goproxy-ha route explain` both use.

use goproxy_routing::{RouteTable, UpstreamList};

use super::Config;

impl Config {
    /// The compiled route table (`[proxy] upstream` as the default route).
    pub fn route_table(&self) -> Result<RouteTable, Vec<String>> {
        let mut problems = self.direct_routes();
        // No credential sets can be configured yet: any reference to one is a mistake.
        match RouteTable::build(
            &self.proxy.upstream,
            &self.routes,
            &self.environments,
            &|_| false,
        ) {
            Ok(table) if problems.is_empty() => Ok(table),
            Ok(_) => Err(problems),
            Err(more) => {
                problems.extend(more);
                Err(problems)
            }
        }
    }

    /// Every upstream list that names `direct`: this build fetches only from module proxies.
    fn direct_routes(&self) -> Vec<String> {
        let mut lists = vec![("proxy.upstream".to_string(), Some(&self.proxy.upstream))];
        for (i, route) in self.routes.iter().enumerate() {
            lists.push((format!("route[{i}].upstream"), route.upstream.as_ref()));
        }
        for (name, env) in &self.environments {
            lists.push((format!("env.{name}.upstream"), env.upstream.as_ref()));
            for (i, route) in env.routes.iter().enumerate() {
                lists.push((
                    format!("env.{name}.route[{i}].upstream"),
                    route.upstream.as_ref(),
                ));
            }
        }
        lists
            .into_iter()
            .filter_map(|(at, list)| {
                let list = UpstreamList::parse(list?).ok()?;
                list.has_direct().then(|| {
                    format!("{at}: \"direct\" (fetching from version control) is not supported by this build; name a module proxy")
                })
            })
            .collect()
    }
}
