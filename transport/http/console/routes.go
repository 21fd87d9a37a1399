package console

import (
	nethttp "net/http"

	httpapi "github.com/e4c2/e4c2/transport/http"
)

// routes is the console's route table: every page and action with the
// role it needs. GET pages need a reader; actions the role of the API
// route they mirror.
func (c *Console) routes() []route {
	const get, post = nethttp.MethodGet, nethttp.MethodPost
	const rd, op, ad = httpapi.RoleReader, httpapi.RoleOperator, httpapi.RoleAdmin
	p := func(s string) string { return Prefix + s }
	return []route{
		{get, p("login"), "", c.loginPage},
		{post, p("login"), "", c.login},
		{post, p("logout"), rd, c.logout},
		{get, p("{$}"), rd, c.overview},

		{get, p("clients"), rd, c.clients},
		{get, p("client"), rd, c.client},
		{post, p("clients/new"), op, c.newClient},
		{post, p("client/attach"), op, c.clientAction},
		{post, p("client/detach"), op, c.clientAction},
		{post, p("client/rotate"), op, c.clientAction},
		{post, p("client/resync"), op, c.clientAction},
		{post, p("client/release"), op, c.clientAction},
		{post, p("client/reset"), op, c.clientAction},
		{post, p("client/remove"), op, c.clientAction},
		{post, p("client/pubkey/send"), op, c.clientAction},
		{post, p("client/pubkey/remove"), op, c.clientAction},
		{post, p("client/pubkey/reset"), op, c.clientAction},
		{get, p("confirm"), op, c.confirm},

		{get, p("topics"), rd, c.topics},
		{get, p("topic"), rd, c.topic},
		{post, p("topics/new"), op, c.newTopic},
		{post, p("topic/rotate"), op, c.topicAction},
		{post, p("topic/remove"), op, c.topicAction},
		{post, p("topic/attach"), op, c.topicAction},

		{get, p("c2key"), rd, c.c2key},
		{post, p("c2key/rotate"), op, c.rotateC2Key},

		{get, p("rules"), rd, c.rules},
		{get, p("rule"), rd, c.rule},
		{get, p("rules/new"), op, c.ruleForm},
		{post, p("rules/save"), op, c.saveRule},
		{post, p("rule/pause"), op, c.ruleAction},
		{post, p("rule/resume"), op, c.ruleAction},
		{post, p("rule/dryrun"), rd, c.dryRun},

		{get, p("events"), rd, c.eventsPage},
		{get, p("events/stream"), rd, c.eventStream},
		{get, p("audit"), rd, c.audit},
		{get, p("timetravel"), rd, c.timeTravel},

		{get, p("tokens"), ad, c.tokens},
		{post, p("tokens/new"), ad, c.createToken},
		{post, p("token/revoke"), ad, c.revokeToken},
	}
}
