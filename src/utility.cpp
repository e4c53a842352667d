/*
 * utility.cpp — the executor and utility hooks: every statement start
 * refreshes the session context and applies other backends' consent
 * changes; COPY of a table with tagged columns is turned into COPY of a
 * query so it goes through the masking rewrite; extension DDL drops what
 * this backend cached.
 *
 * Owns: ExecutorStart and ProcessUtility hooks, install_query_hooks().
 * Must never: change a COPY FROM (writes store what is given) or a COPY of
 * a table without tagged columns.
 */
#include "boundary.h"
#include "bypass.h"
#include "cache.h"
#include "compat.h"
#include "consent.h"
#include "cursor.h"
#include "decision.h"
#include "prepared.h"
#include "spi.h"
#include "taxonomy.h"

extern "C" {
#include "access/relation.h"
#include "access/sysattr.h"
#include "access/xact.h"
#include "catalog/index.h"
#include "catalog/namespace.h"
#include "catalog/pg_statistic_ext.h"
#include "miscadmin.h"
#include "executor/executor.h"
#include "nodes/makefuncs.h"
#include "optimizer/optimizer.h"
#include "tcop/utility.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/builtins.h"
#include "utils/rel.h"
#include "utils/syscache.h"
}

namespace consent {

void install_planner_hook();

namespace {

ExecutorStart_hook_type prev_executor_start = nullptr;
ExecutorRun_hook_type prev_executor_run = nullptr;
ProcessUtility_hook_type prev_process_utility = nullptr;

void executor_start(QueryDesc *desc, int eflags)
{
    /* a parallel plan enters parallel mode in ExecutorStart, where no new
     * snapshot can be taken: the statement's snapshot is taken before */
    entry([&] { statement_start(desc->plannedstmt->parallelModeNeeded); });
    if (prev_executor_start)
        prev_executor_start(desc, eflags);
    else
        standard_ExecutorStart(desc, eflags);
    entry([&] { count_unmasked_reads(desc, eflags); });
}

void run(CONSENT_EXECUTOR_RUN_PARAMS)
{
    if (prev_executor_run)
        prev_executor_run(CONSENT_EXECUTOR_RUN_ARGS);
    else
        standard_ExecutorRun(CONSENT_EXECUTOR_RUN_ARGS);
}

void executor_run(CONSENT_EXECUTOR_RUN_PARAMS)
{
    /* a portal read in parts whose rows were computed ahead (cursor.h) */
    CursorTracker *tracker = entry([&] {
        statement_resumed();
        return cursor_run_begin(desc, count);
    });
    if (!tracker) {
        run(CONSENT_EXECUTOR_RUN_ARGS);
        return;
    }
    PG_TRY();
    {
        run(CONSENT_EXECUTOR_RUN_ARGS);
    }
    PG_FINALLY();
    {
        cursor_run_end(tracker);
    }
    PG_END_TRY();
}

/* Whether the relation has a consent-tagged column. */
bool has_tagged_column(Oid relid)
{
    Relation rel = relation_open(relid, AccessShareLock);
    TupleDesc desc = RelationGetDescr(rel);
    bool found = false;
    for (int i = 0; i < desc->natts && !found; i++) {
        Form_pg_attribute att = TupleDescAttr(desc, i);
        found = !att->attisdropped && tagged_category(att->atttypid) >= 0;
    }
    relation_close(rel, NoLock);
    return found;
}

/* COPY t [(cols)] TO ... → COPY (SELECT cols FROM ONLY t) TO ..., as
 * PostgreSQL itself does for tables with row-level security.  A partitioned
 * table holds no rows of its own: PostgreSQL refuses COPY TO of one (42809),
 * except that its row-level security rewrite reads FROM ONLY the parent and
 * exports nothing, silently.  Every role gets PostgreSQL's error instead. */
void rewrite_copy_to(CopyStmt *stmt)
{
    Oid relid = RangeVarGetRelid(stmt->relation, AccessShareLock, true);
    if (!OidIsValid(relid))
        return;
    char kind = get_rel_relkind(relid);
    if (kind == RELKIND_PARTITIONED_TABLE && has_tagged_column(relid))
        ereport(ERROR, (errcode(ERRCODE_WRONG_OBJECT_TYPE),
                        errmsg("cannot copy from partitioned table \"%s\"", get_rel_name(relid)),
                        errhint("Try the COPY (SELECT ...) TO variant.")));
    if (kind != RELKIND_RELATION || !has_tagged_column(relid))
        return;
    SelectStmt *select = makeNode(SelectStmt);
    List *names = stmt->attlist;
    if (names == NIL) {
        Relation rel = relation_open(relid, NoLock);
        TupleDesc desc = RelationGetDescr(rel);
        for (int i = 0; i < desc->natts; i++) {
            Form_pg_attribute att = TupleDescAttr(desc, i);
            if (!att->attisdropped)
                names = lappend(names, makeString(pstrdup(NameStr(att->attname))));
        }
        relation_close(rel, NoLock);
    }
    ListCell *lc;
    foreach (lc, names) {
        ColumnRef *ref = makeNode(ColumnRef);
        ref->fields = list_make1(makeString(pstrdup(strVal(lfirst(lc)))));
        ref->location = -1;
        ResTarget *target = makeNode(ResTarget);
        target->val = (Node *)ref;
        target->location = -1;
        select->targetList = lappend(select->targetList, target);
    }
    RangeVar *from = (RangeVar *)copyObjectImpl(stmt->relation);
    from->inh = false;
    select->fromClause = list_make1(from);
    stmt->query = (Node *)select;
    stmt->relation = nullptr;
    stmt->attlist = NIL;
}

/* The table a utility statement creates or alters when it can add or
 * change columns, or add or turn on statistics beside them (CREATE INDEX,
 * CREATE or ALTER STATISTICS, ALTER INDEX ... SET STATISTICS: the index's
 * or statistics object's table); InvalidOid for other statements. */
Oid altered_relation(Node *node)
{
    RangeVar *rv = nullptr;
    if (IsA(node, CreateStmt))
        rv = ((CreateStmt *)node)->relation;
    else if (IsA(node, AlterTableStmt))
        rv = ((AlterTableStmt *)node)->relation;
    else if (IsA(node, CreateTableAsStmt))
        rv = ((CreateTableAsStmt *)node)->into->rel;
    else if (IsA(node, IndexStmt))
        rv = ((IndexStmt *)node)->relation;
    else if (IsA(node, CreateStatsStmt)) {
        List *rels = ((CreateStatsStmt *)node)->relations;
        if (list_length(rels) == 1 && IsA(linitial(rels), RangeVar))
            rv = (RangeVar *)linitial(rels);
    } else if (IsA(node, AlterStatsStmt)) {
        Oid stat = get_statistics_object_oid(((AlterStatsStmt *)node)->defnames, true);
        HeapTuple tup = OidIsValid(stat) ? SearchSysCache1(STATEXTOID, ObjectIdGetDatum(stat)) : nullptr;
        if (!HeapTupleIsValid(tup))
            return InvalidOid;
        Oid relid = ((Form_pg_statistic_ext)GETSTRUCT(tup))->stxrelid;
        ReleaseSysCache(tup);
        return relid;
    }
    Oid relid = rv ? RangeVarGetRelid(rv, NoLock, true) : InvalidOid;
    char kind = OidIsValid(relid) ? get_rel_relkind(relid) : '\0';
    if (kind == RELKIND_INDEX || kind == RELKIND_PARTITIONED_INDEX)
        return IndexGetRelation(relid, true); /* ALTER INDEX */
    return relid;
}

void hide_derived_statistics(Oid relid);

/* $1 and every partition and inheritance child below it, as tree(r). */
const char *const INHERITANCE_TREE = "WITH RECURSIVE tree(r) AS (SELECT $1::oid UNION"
                                     " SELECT i.inhrelid FROM pg_inherits i JOIN tree ON i.inhparent = tree.r) ";

/*
 * Planner statistics of tagged columns would show raw values (pg_stats'
 * most common values and histograms) to every role that may select the
 * column: they are never collected (statistics target 0) and any that
 * exist are deleted.  Predicates on tagged columns see masked values, so
 * the planner had no use for them.
 */
void hide_statistics(Oid relid)
{
    Spi spi;
    auto rows = spi.query("SELECT a.attname, a.attnum, a.atttypid, a.attstattarget IS DISTINCT FROM 0 OR EXISTS ("
                          " SELECT FROM pg_statistic s WHERE s.starelid = a.attrelid AND s.staattnum = a.attnum)"
                          " FROM pg_attribute a"
                          " WHERE a.attrelid = $1::oid AND a.attnum > 0 AND NOT a.attisdropped",
                          {std::to_string(relid)}, true /* sees what this statement created */);
    for (auto &row : rows) {
        if (!row[0] || !row[1] || !row[2] || !row[3] || *row[3] != "t" || tagged_category(Oid(std::stoul(*row[2]))) < 0)
            continue;
        std::string col = *row[0];
        int attnum = std::stoi(*row[1]);
        pg([&] {
            char *rel = quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)), get_rel_name(relid));
            const char *sql =
                psprintf("ALTER TABLE %s ALTER COLUMN %s SET STATISTICS 0", rel, quote_identifier(col.c_str()));
            if (SPI_execute(sql, false, 0) != SPI_OK_UTILITY)
                elog(ERROR, "could not hide statistics of %s.%s", rel, col.c_str());
            const char *del =
                psprintf("DELETE FROM pg_catalog.pg_statistic WHERE starelid = %u AND staattnum = %d", relid, attnum);
            if (SPI_execute(del, false, 0) != SPI_OK_DELETE)
                elog(ERROR, "could not delete statistics of %s.%s", rel, col.c_str());
        });
    }
    hide_derived_statistics(relid);
}

/* Whether a Postgres array of type OIDs, as text ("{25,16434}"), names a
 * tagged type. */
bool names_tagged_type(const std::string &oids)
{
    for (const char *p = oids.c_str(); *p;) {
        char *end;
        unsigned long type = std::strtoul(p, &end, 10);
        if (end == p) {
            p++; /* a brace or a comma */
            continue;
        }
        if (tagged_category(Oid(type)) >= 0)
            return true;
        p = end;
    }
    return false;
}

/*
 * Statistics PostgreSQL keeps beside the table's own columns would show raw
 * values of tagged columns to the table's owner role: those of index
 * expressions (pg_stats of the index, which row-level security does not
 * hide) and of extended statistics objects (pg_stats_ext and
 * pg_stats_ext_exprs, hidden only while row-level security is active).
 * Every expression column of an index that reads a tagged column, and every
 * statistics object that reads one, gets statistics target 0 (ANALYZE
 * skips it), and what ANALYZE stored is deleted; for the table and its
 * partitions and inheritance children.  Conservative: a tagged column read
 * anywhere in the index (key, expression or predicate) counts.
 */
void hide_derived_statistics(Oid relid)
{
    Spi spi;
    const std::string tree = INHERITANCE_TREE;
    /* the types of the table's columns an object depends on */
    auto read_types = [](const char *classid, const char *objid) {
        return std::string("ARRAY(SELECT a.atttypid FROM pg_depend d JOIN pg_attribute a"
                           " ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid WHERE d.classid = ") +
               classid + " AND d.objid = " + objid +
               " AND d.refclassid = 'pg_class'::regclass AND d.refobjsubid > 0)::text";
    };
    const std::string columns_sql =
        tree +
        "SELECT i.indexrelid::regclass::text, k.n + 1, ia.attstattarget IS DISTINCT FROM 0 OR EXISTS ("
        " SELECT FROM pg_statistic s WHERE s.starelid = i.indexrelid AND s.staattnum = k.n + 1), " +
        read_types("'pg_class'::regclass", "i.indexrelid") +
        ", i.indexrelid FROM pg_index i CROSS JOIN generate_series(0, i.indnatts - 1) k(n)"
        " JOIN pg_attribute ia ON ia.attrelid = i.indexrelid AND ia.attnum = k.n + 1"
        " WHERE i.indrelid IN (SELECT r FROM tree) AND i.indkey[k.n] = 0";
    auto columns = spi.query(columns_sql.c_str(), {std::to_string(relid)}, true /* sees this statement's */);
    for (auto &row : columns) {
        if (!row[0] || !row[1] || !row[2] || !row[3] || !row[4] || *row[2] != "t" || !names_tagged_type(*row[3]))
            continue;
        spi.exec(("ALTER INDEX " + *row[0] + " ALTER COLUMN " + *row[1] + " SET STATISTICS 0").c_str());
        spi.exec(("DELETE FROM pg_catalog.pg_statistic WHERE starelid = " + *row[4] + " AND staattnum = " + *row[1])
                     .c_str());
    }
    const std::string objects_sql = tree +
                                    "SELECT format('%I.%I', n.nspname, e.stxname), e.stxstattarget IS DISTINCT FROM 0 OR EXISTS ("
                                    " SELECT FROM pg_statistic_ext_data x WHERE x.stxoid = e.oid), " +
                                    read_types("'pg_statistic_ext'::regclass", "e.oid") +
                                    ", e.oid FROM pg_statistic_ext e JOIN pg_namespace n ON n.oid = e.stxnamespace"
                                    " WHERE e.stxrelid IN (SELECT r FROM tree)";
    auto objects = spi.query(objects_sql.c_str(), {std::to_string(relid)}, true);
    for (auto &row : objects) {
        if (!row[0] || !row[1] || !row[2] || !row[3] || *row[1] != "t" || !names_tagged_type(*row[2]))
            continue;
        spi.exec(("ALTER STATISTICS " + *row[0] + " SET STATISTICS 0").c_str());
        spi.exec(("DELETE FROM pg_catalog.pg_statistic_ext_data WHERE stxoid = " + *row[3]).c_str());
    }
}

/* Relations a statement makes partitions or inheritance children of
 * another: they must fail closed like their protected ancestor. */
std::vector<Oid> new_children(Node *node)
{
    std::vector<Oid> out;
    if (IsA(node, CreateStmt)) {
        auto *stmt = (CreateStmt *)node;
        if (stmt->inhRelations != NIL || stmt->partbound != nullptr) {
            Oid relid = RangeVarGetRelid(stmt->relation, NoLock, true);
            if (OidIsValid(relid))
                out.push_back(relid);
        }
    } else if (IsA(node, AlterTableStmt)) {
        auto *stmt = (AlterTableStmt *)node;
        ListCell *lc;
        foreach (lc, stmt->cmds) {
            auto *cmd = (AlterTableCmd *)lfirst(lc);
            Oid relid = InvalidOid;
            if (cmd->subtype == AT_AttachPartition && cmd->def && IsA(cmd->def, PartitionCmd))
                relid = RangeVarGetRelid(((PartitionCmd *)cmd->def)->name, NoLock, true);
            else if (cmd->subtype == AT_AddInherit)
                relid = RangeVarGetRelid(stmt->relation, NoLock, true);
            if (OidIsValid(relid))
                out.push_back(relid);
        }
    }
    return out;
}

void secure_children(const std::vector<Oid> &children)
{
    for (Oid child : children) {
        if (!OidIsValid(protected_owner(child)))
            continue;
        Spi spi;
        /* with every partition below it */
        spi.exec((std::string(INHERITANCE_TREE) + "SELECT consent._secure(r::regclass) FROM tree").c_str(),
                 {std::to_string(child)});
    }
}

/* Refuses a generated column of an untagged type computed from a tagged
 * column (raw-derived, never masked).  Stored ones keep the derived value;
 * virtual ones (18) are computed by the planner after the masking rewrite,
 * from the raw cell.  A generated column of a tagged type is masked itself. */
void refuse_untagged_generated(Oid relid)
{
    if (!OidIsValid(relid))
        return;
    Relation rel = relation_open(relid, AccessShareLock);
    TupleDesc desc = RelationGetDescr(rel);
    TupleConstr *constr = desc->constr;
    Form_pg_attribute column = nullptr, source = nullptr;
    for (int d = 0; has_generated_columns(constr) && d < constr->num_defval && !source; d++) {
        column = TupleDescAttr(desc, constr->defval[d].adnum - 1);
        if (!is_generated(column->attgenerated) || tagged_category(column->atttypid) >= 0)
            continue;
        Bitmapset *read = nullptr;
        pull_varattnos((Node *)stringToNode(constr->defval[d].adbin), 1, &read);
        /* a whole-row reference (PostgreSQL refuses it here today) reads every column */
        bool whole_row = bms_is_member(0 - FirstLowInvalidHeapAttributeNumber, read);
        for (int a = 0; a < desc->natts && !source; a++) {
            Form_pg_attribute att = TupleDescAttr(desc, a);
            if (!att->attisdropped &&
                (whole_row || bms_is_member(att->attnum - FirstLowInvalidHeapAttributeNumber, read)) &&
                tagged_category(att->atttypid) >= 0)
                source = att;
        }
    }
    if (source)
        ereport(ERROR,
                (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                 errmsg(column->attgenerated == ATTRIBUTE_GENERATED_STORED
                            ? "generated column \"%s\" cannot store values derived from consent-tagged column \"%s\""
                            : "generated column \"%s\" cannot compute values from consent-tagged column \"%s\"",
                        NameStr(column->attname), NameStr(source->attname)),
                 errdetail("Column \"%s\" of table \"%s\" is of type %s, which is not consent-tagged, and is generated "
                           "from column \"%s\" of type %s: roles that see \"%s\" masked would read what is derived "
                           "from it unmasked.",
                           NameStr(column->attname), RelationGetRelationName(rel), format_type_be(column->atttypid),
                           NameStr(source->attname), format_type_be(source->atttypid), NameStr(source->attname)),
                 errhint("Declare \"%s\" with a consent-tagged type (e.g. %s) so that it is masked too, or drop the "
                         "generation expression.",
                         NameStr(column->attname),
                         format_type_be(taxonomy().categories[tagged_category(source->atttypid)].type))));
    relation_close(rel, NoLock);
}

/*
 * Triggers see OLD and NEW rows unmasked.  A role that is masked must not
 * be able to attach code that would read them: creating a trigger on a
 * table with tagged columns, or replacing the function of such a trigger,
 * needs a role that bypasses masking (superuser or BYPASSRLS).
 */
void check_trigger_code(Node *node)
{
    if (role_bypasses(GetOuterUserId()))
        return;
    if (IsA(node, CreateTrigStmt)) {
        Oid relid = RangeVarGetRelid(((CreateTrigStmt *)node)->relation, NoLock, true);
        if (OidIsValid(relid) && has_tagged_column(relid))
            throw Error(ERRCODE_INSUFFICIENT_PRIVILEGE,
                        std::string("permission denied to create a trigger on \"") + get_rel_name(relid) + "\"",
                        "The table has consent-tagged columns; triggers would see their values unmasked.",
                        "A superuser or a role with BYPASSRLS must create it.");
    }
    if (IsA(node, CreateFunctionStmt) && ((CreateFunctionStmt *)node)->replace) {
        auto *stmt = (CreateFunctionStmt *)node;
        Spi spi;
        /* the function being replaced, whatever its arguments' names: by name and
         * argument types, as pg_proc knows it */
        /* by name in any schema: conservative, a namesake is refused too */
        char *name = pg([&] { return NameListToString(stmt->funcname); });
        std::string bare = strVal(llast(stmt->funcname));
        auto rows = spi.query("SELECT DISTINCT g.tgrelid FROM pg_trigger g JOIN pg_proc p ON p.oid = g.tgfoid"
                              " WHERE p.proname = $1",
                              {bare});
        bool guarded = false;
        for (auto &row : rows)
            if (row[0] && has_tagged_column(Oid(std::stoul(*row[0]))))
                guarded = true;
        if (guarded)
            throw Error(ERRCODE_INSUFFICIENT_PRIVILEGE, std::string("permission denied to replace function ") + name,
                        "It is the function of a trigger on a table with consent-tagged columns.",
                        "A superuser or a role with BYPASSRLS must replace it.");
    }
}

bool is_extension_ddl(Node *node)
{
    if (IsA(node, CreateExtensionStmt) || IsA(node, AlterExtensionStmt) || IsA(node, AlterExtensionContentsStmt))
        return true;
    return IsA(node, DropStmt) && ((DropStmt *)node)->removeType == OBJECT_EXTENSION;
}

void process_utility(PlannedStmt *pstmt, const char *query_string, bool read_only_tree, ProcessUtilityContext context,
                     ParamListInfo params, QueryEnvironment *query_env, DestReceiver *dest, QueryCompletion *qc)
{
    Node *node = pstmt->utilityStmt;
    /* FETCH and other utility statements are statements too: consent
     * changes committed meanwhile apply to them */
    entry([&] {
        check_purpose_scope(node, context);
        statement_start();
        if (IsA(node, FetchStmt))
            cursor_fetch_check((FetchStmt *)node);
    });
    if (IsA(node, CopyStmt) && !((CopyStmt *)node)->is_from && ((CopyStmt *)node)->relation) {
        if (read_only_tree) {
            pstmt = (PlannedStmt *)copyObjectImpl(pstmt);
            node = pstmt->utilityStmt;
        }
        entry([&] {
            pg([&] {
                if (taxonomy().installed)
                    rewrite_copy_to((CopyStmt *)node);
            });
        });
    }
    if (IsA(node, CreateTrigStmt) || IsA(node, CreateFunctionStmt))
        entry([&] {
            pg([&] {
                if (taxonomy().installed)
                    check_trigger_code(node);
            });
        });
    /* two-phase commit: the subjects a prepared transaction changed are
     * published when it commits (prepared.h) */
    auto *xact = IsA(node, TransactionStmt) ? (TransactionStmt *)node : nullptr;
    bool finishing = xact && (xact->kind == TRANS_STMT_COMMIT_PREPARED || xact->kind == TRANS_STMT_ROLLBACK_PREPARED);
    bool gid_known = false;
    if (xact && xact->kind == TRANS_STMT_PREPARE)
        prepared::preparing(xact->gid);
    else if (finishing)
        gid_known = entry([&] { return prepared::known(xact->gid); });
    bool ext = is_extension_ddl(node);
    bool columns_may_change = IsA(node, CreateStmt) || IsA(node, AlterTableStmt) || IsA(node, CreateTableAsStmt) ||
                              IsA(node, IndexStmt) || IsA(node, CreateStatsStmt) || IsA(node, AlterStatsStmt) ||
                              IsA(node, CreateForeignTableStmt);
    if (prev_process_utility)
        prev_process_utility(pstmt, query_string, read_only_tree, context, params, query_env, dest, qc);
    else
        standard_ProcessUtility(pstmt, query_string, read_only_tree, context, params, query_env, dest, qc);
    if (finishing)
        entry([&] { prepared::finished(xact->gid, xact->kind == TRANS_STMT_COMMIT_PREPARED, gid_known); });
    if (IsA(node, VariableSetStmt) && ((VariableSetStmt *)node)->name &&
        (strcmp(((VariableSetStmt *)node)->name, "role") == 0 ||
         strcmp(((VariableSetStmt *)node)->name, "session_authorization") == 0))
        entry([&] { role_changed(); });
    if (columns_may_change)
        entry([&] {
            pg([&] {
                if (!taxonomy().installed)
                    return;
                CommandCounterIncrement(); /* see what the statement created */
                Oid relid = altered_relation(node);
                if (IsA(node, CreateForeignTableStmt)) /* not a CreateStmt for IsA(), nor for altered_relation() */
                    refuse_untagged_generated(
                        RangeVarGetRelid(((CreateForeignTableStmt *)node)->base.relation, NoLock, true));
                if (IsA(node, CreateStmt) || IsA(node, AlterTableStmt)) {
                    refuse_untagged_generated(relid);
                    for (Oid child : new_children(node)) /* ATTACH PARTITION, INHERIT */
                        refuse_untagged_generated(child);
                }
                if (OidIsValid(relid) && has_tagged_column(relid))
                    hide_statistics(relid);
                std::vector<Oid> children = new_children(node);
                if (!children.empty()) {
                    taxonomy_invalidate(); /* protection now reaches them */
                    secure_children(children);
                }
            });
        });
    if (IsA(node, DropRoleStmt))
        entry([&] {
            pg([&] {
                if (!taxonomy().installed)
                    return;
                /* a dropped role keeps no purposes (a dump would otherwise
                 * name it by a bare OID that may belong to another role) */
                Spi spi;
                spi.exec("DELETE FROM consent.purpose_roles p"
                         " WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_roles r WHERE r.oid = p.role::oid)");
            });
        });
    if (ext) {
        /* every backend drops its taxonomy: the extension came or went */
        CacheInvalidateRelcacheAll();
        taxonomy_invalidate();
        cache_reset();
    }
}

} // namespace

void hide_column_statistics(Oid relid)
{
    hide_statistics(relid);
}
bool relation_has_tagged_column(Oid relid)
{
    return has_tagged_column(relid);
}

void install_query_hooks()
{
    install_planner_hook();
    prev_executor_start = ExecutorStart_hook;
    ExecutorStart_hook = executor_start;
    prev_executor_run = ExecutorRun_hook;
    ExecutorRun_hook = executor_run;
    prev_process_utility = ProcessUtility_hook;
    ProcessUtility_hook = process_utility;
    register_cache_callbacks();
}

} // namespace consent

using namespace consent;

/* consent._hide_statistics(relation): see hide_statistics(). */
CONSENT_FUNCTION(consent_hide_statistics)
{
    return entry([&]() -> Datum {
        Oid relid = PG_GETARG_OID(0);
        hide_column_statistics(relid);
        PG_RETURN_VOID();
    });
}

/* consent._has_tagged_column(relation): a column of a tagged type or of a
 * type built from one. */
CONSENT_FUNCTION(consent_has_tagged_column)
{
    return entry([&]() -> Datum {
        Oid relid = PG_GETARG_OID(0);
        PG_RETURN_BOOL(pg([&] { return relation_has_tagged_column(relid); }));
    });
}
