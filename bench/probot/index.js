// The peer of bench-ingest: what a GitHub App author would write with Probot for the
// events tembo-dispatch acts on. Probot verifies the signature, parses the payload and
// runs this handler before it answers; the handler only picks the deliveries that
// tembo-dispatch would queue, and has no store to write them to.
export default (app) => {
  app.on(["issues.labeled", "issue_comment.created"], async (context) => {
    const payload = context.payload;
    const wanted =
      context.name === "issues"
        ? payload.label?.name === "tembo"
        : (payload.comment?.body ?? "").trimStart().startsWith("/tembo");
    if (wanted) {
      context.log.debug({ delivery: context.id }, "would dispatch");
    }
  });
};
