/*
 * citus.cpp — pg_consent on a Citus cluster (see citus.h and
 * docs/scaling.md, "Citus").
 *
 * Citus's functions are found with load_external_function() in the Citus
 * library the server preloaded, once per backend; a server without Citus
 * never loads or calls anything of it.  The ones used are part of Citus's
 * C interface that its own extensions and tools call (shard name parsing,
 * shard metadata look-up, sending a command to the nodes with metadata in
 * the coordinated transaction); they are checked for at run time, and when
 * one is missing (another Citus version) pg_consent refuses the cluster
 * operations instead of guessing (0A000).
 */
#include "citus.h"

#include "spi.h"

extern "C" {
#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_language.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "parser/parse_func.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
}

namespace consent::citus {

namespace {

struct Api {
    bool (*has_been_loaded)(void);
    uint64 (*extract_shard_id)(const char *name, bool missing_ok);
    Oid (*shard_relation)(int64 shard_id, bool missing_ok);
    bool (*is_citus_table)(Oid relid);
    bool (*internal_backend)(void);
    void (*send_to_metadata_nodes)(const char *command, const char *user, int nparams, const Oid *types,
                                   const char *const *values);
    void (*send_to_worker)(const char *node_name, int32 node_port, const char *command);
};

enum class Found { Unknown, No, Yes };
Found found = Found::Unknown;
Api api;

/* Whether Citus is preloaded: its GUCs are real ones (a placeholder that
 * someone SET is not). */
bool citus_preloaded()
{
    int flags = GetConfigOptionFlags("citus.version", true);
    return flags != 0 ? !(flags & GUC_CUSTOM_PLACEHOLDER) : GetConfigOption("citus.version", true, false) != nullptr;
}

template <typename T> void resolve(T &fn, const char *name, bool &complete)
{
    fn = reinterpret_cast<T>(load_external_function("$libdir/citus", name, false, nullptr));
    complete = complete && fn != nullptr;
}

/* The Citus functions, looked up at the first use in this backend;
 * nullptr when Citus is not preloaded.  Throws when Citus is loaded but
 * lacks one of them. */
const Api *citus_api()
{
    if (found == Found::Unknown) {
        found = Found::No;
        if (pg([] { return citus_preloaded(); })) {
            bool complete = true;
            pg([&] {
                resolve(api.has_been_loaded, "CitusHasBeenLoaded", complete);
                resolve(api.extract_shard_id, "ExtractShardIdFromTableName", complete);
                resolve(api.shard_relation, "LookupShardRelationFromCatalog", complete);
                resolve(api.is_citus_table, "IsCitusTable", complete);
                resolve(api.internal_backend, "IsCitusInternalBackend", complete);
                resolve(api.send_to_metadata_nodes, "SendCommandToRemoteMetadataNodesParams", complete);
                resolve(api.send_to_worker, "SendCommandToWorker", complete);
            });
            if (!complete)
                throw Error(ERRCODE_FEATURE_NOT_SUPPORTED, "this Citus version is not supported by pg_consent",
                            "A function pg_consent calls is missing from the Citus library.",
                            "See docs/scaling.md for the Citus versions pg_consent is tested with.");
            found = Found::Yes;
        }
    }
    return found == Found::Yes ? &api : nullptr;
}

/* A call's argument as text a remote node reads back the same, whatever
 * its search_path, DateStyle and TimeZone. */
std::string argument_text(Oid type, Datum value)
{
    return pg([&]() -> std::string {
        switch (type) {
        case REGCLASSOID: {
            Oid rel = DatumGetObjectId(value);
            char *name = get_rel_name(rel);
            if (!name)
                ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE), errmsg("relation with OID %u does not exist", rel)));
            return quote_qualified_identifier(get_namespace_name(get_rel_namespace(rel)), name);
        }
        case REGTYPEOID:
            return format_type_be_qualified(DatumGetObjectId(value));
        case REGROLEOID: {
            char *name = GetUserNameFromId(DatumGetObjectId(value), false);
            return quote_identifier(name);
        }
        case TIMESTAMPTZOID: {
            TimestampTz ts = DatumGetTimestampTz(value);
            char buf[MAXDATELEN + 1];
            if (TIMESTAMP_NOT_FINITE(ts)) {
                EncodeSpecialTimestamp(ts, buf);
            } else {
                struct pg_tm tm;
                fsec_t fsec;
                if (timestamp2tm(ts, nullptr, &tm, &fsec, nullptr, nullptr) != 0)
                    ereport(ERROR, (errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE), errmsg("timestamp out of range")));
                EncodeDateTime(&tm, fsec, true, 0, nullptr, USE_ISO_DATES, buf);
            }
            return buf;
        }
        default: {
            Oid out;
            bool varlena;
            getTypeOutputInfo(type, &out, &varlena);
            return OidOutputFunctionCall(out, value);
        }
        }
    });
}

/* Set while this backend replays a call another node forwarded: what the
 * call records or changes must not be forwarded again. */
bool replaying = false;

} // namespace

bool active()
{
    const Api *a = citus_api();
    return a && pg([&] { return a->has_been_loaded(); });
}

Oid shard_parent(Oid relid)
{
    if (!active())
        return InvalidOid;
    return pg([&]() -> Oid {
        char *name = get_rel_name(relid);
        if (!name)
            return InvalidOid;
        /* a shard is named <table>_<shard id>: most relations are not */
        size_t len = strlen(name);
        if (len < 3 || name[len - 1] < '0' || name[len - 1] > '9')
            return InvalidOid;
        uint64 shard = api.extract_shard_id(name, true);
        if (shard == 0)
            return InvalidOid;
        Oid parent = api.shard_relation(int64(shard), true);
        if (!OidIsValid(parent) || parent == relid || get_rel_namespace(parent) != get_rel_namespace(relid))
            return InvalidOid;
        return parent;
    });
}

bool is_citus_table(Oid relid)
{
    return active() && pg([&] { return api.is_citus_table(relid); });
}

bool replaying_call()
{
    return replaying;
}

bool internal_backend()
{
    const Api *a = citus_api();
    return a && pg([&] { return a->internal_backend(); });
}

namespace {

/* Sends call (a qualified regprocedure text) with these text arguments to
 * the other nodes with metadata, through consent._replay(). */
void forward(const std::string &call, const std::vector<std::optional<std::string>> &args)
{
    std::string command = "SELECT consent._replay($1";
    for (size_t i = 0; i < args.size(); i++)
        command += ", $" + std::to_string(i + 2);
    command += ")";
    std::vector<const char *> values;
    values.push_back(call.c_str());
    for (auto &a : args)
        values.push_back(a ? a->c_str() : nullptr);
    pg([&] {
        char *user = GetUserNameFromId(GetUserId(), false);
        api.send_to_metadata_nodes(command.c_str(), user, int(values.size()), nullptr, values.data());
    });
}

} // namespace

void forward_call(FunctionCallInfo fcinfo)
{
    if (replaying || !active())
        return;
    Oid fn = fcinfo->flinfo->fn_oid;
    std::vector<std::optional<std::string>> args;
    int nargs = fcinfo->nargs;
    for (int i = 0; i < nargs; i++) {
        if (fcinfo->args[i].isnull) {
            args.push_back(std::nullopt);
            continue;
        }
        Oid type = pg([&] { return get_fn_expr_argtype(fcinfo->flinfo, i); });
        if (!OidIsValid(type))
            type = pg([&] {
                HeapTuple tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(fn));
                if (!HeapTupleIsValid(tup))
                    elog(ERROR, "cache lookup failed for function %u", fn);
                Oid t = ((Form_pg_proc)GETSTRUCT(tup))->proargtypes.values[i];
                ReleaseSysCache(tup);
                return t;
            });
        args.push_back(argument_text(type, fcinfo->args[i].value));
    }
    std::string call = pg([&] { return std::string(format_procedure_qualified(fn)); });
    forward(call, args);
}

bool distributes_tables(const FormData_pg_proc *proc)
{
    const char *name = NameStr(proc->proname);
    return proc->pronamespace == PG_CATALOG_NAMESPACE && proc->prolang == ClanguageId &&
           (strcmp(name, "create_distributed_table") == 0 || strcmp(name, "create_reference_table") == 0 ||
            strcmp(name, "citus_add_local_table_to_metadata") == 0 || strcmp(name, "alter_distributed_table") == 0);
}

void sync_tables()
{
    if (replaying || !active())
        return;
    std::vector<Row> tables, masks;
    {
        Spi spi;
        /* (relation::text is qualified: these queries' search_path has no
         * user schema, spi.h) */
        tables = spi.query("SELECT relation::oid, subject_column, relation::text FROM consent.protected_tables");
        masks = spi.query("SELECT relation::oid, column_name, mask, relation::text FROM consent.column_masks");
    }
    for (auto &t : tables)
        if (is_citus_table(Oid(std::stoul(t[0].value()))))
            forward("consent.protect(regclass,name)", {t[2], t[1]});
    for (auto &m : masks)
        if (is_citus_table(Oid(std::stoul(m[0].value()))))
            forward("consent.set_mask(regclass,name,text)", {m[3], m[1], m[2]});
}

} // namespace consent::citus

using namespace consent;

/* consent._replay(call text, VARIADIC args text[]): runs a call another
 * node of the cluster forwarded (citus::forward_call()), as the user it
 * connected as, without forwarding it again.  Only in a backend Citus
 * opened for another node (as Citus itself tells them); it runs the named
 * function of ours with the caller's privileges, as calling it directly
 * would. */
CONSENT_FUNCTION(consent_replay)
{
    return entry([&]() -> Datum {
        if (!citus::internal_backend())
            throw Error(ERRCODE_INSUFFICIENT_PRIVILEGE, "consent._replay runs calls that other nodes of a Citus cluster send",
                        "", "Call the function itself.");
        if (PG_ARGISNULL(0))
            throw Error(ERRCODE_NULL_VALUE_NOT_ALLOWED, "consent._replay needs a function");
        pg([&] {
            Oid fn = DatumGetObjectId(
                DirectFunctionCall1(regprocedurein, CStringGetDatum(text_to_cstring(PG_GETARG_TEXT_PP(0)))));
            HeapTuple tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(fn));
            if (!HeapTupleIsValid(tup))
                elog(ERROR, "cache lookup failed for function %u", fn);
            auto *proc = (Form_pg_proc)GETSTRUCT(tup);
            Oid consent_schema = get_namespace_oid("consent", false);
            if (proc->pronamespace != consent_schema || NameStr(proc->proname)[0] == '_')
                ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                                errmsg("consent._replay runs functions of the consent schema only")));
            int nargs = proc->pronargs;
            Oid *types = (Oid *)palloc(sizeof(Oid) * size_t(Max(nargs, 1)));
            for (int i = 0; i < nargs; i++)
                types[i] = proc->proargtypes.values[i];
            StringInfoData sql;
            initStringInfo(&sql);
            appendStringInfo(&sql, "SELECT %s(",
                             quote_qualified_identifier("consent", NameStr(proc->proname)));
            ReleaseSysCache(tup);
            ArrayType *arr = PG_ARGISNULL(1) ? nullptr : PG_GETARG_ARRAYTYPE_P(1);
            Datum *elems = nullptr;
            bool *elem_nulls = nullptr;
            int nelems = 0;
            if (arr)
                deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &elem_nulls, &nelems);
            if (nelems != nargs)
                ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                                errmsg("consent._replay: %s takes %d arguments, %d given",
                                       text_to_cstring(PG_GETARG_TEXT_PP(0)), nargs, nelems)));
            Datum *values = (Datum *)palloc(sizeof(Datum) * size_t(Max(nargs, 1)));
            char *nulls = (char *)palloc(size_t(Max(nargs, 1)));
            for (int i = 0; i < nargs; i++) {
                appendStringInfo(&sql, "%s$%d", i ? ", " : "", i + 1);
                nulls[i] = elem_nulls[i] ? 'n' : ' ';
                if (!elem_nulls[i]) {
                    Oid in, ioparam;
                    getTypeInputInfo(types[i], &in, &ioparam);
                    values[i] = OidInputFunctionCall(in, TextDatumGetCString(elems[i]), ioparam, -1);
                } else {
                    values[i] = (Datum)0;
                }
            }
            appendStringInfoChar(&sql, ')');
            bool was = citus::replaying;
            PG_TRY();
            {
                citus::replaying = true;
                if (SPI_connect() != SPI_OK_CONNECT)
                    elog(ERROR, "SPI_connect failed");
                int rc = SPI_execute_with_args(sql.data, nargs, types, values, nulls, false, 0);
                if (rc != SPI_OK_SELECT)
                    elog(ERROR, "consent._replay: %s", SPI_result_code_string(rc));
                SPI_finish();
            }
            PG_FINALLY();
            {
                citus::replaying = was;
            }
            PG_END_TRY();
        });
        PG_RETURN_VOID();
    });
}

/* consent.protect(), consent.allow_purpose() and the other catalog
 * functions: the function of the same name in consent_local (the work,
 * on this node), then the call forwarded to the cluster's other
 * nodes.  A call about a relation that is not a Citus table (its first
 * argument a regclass) stays on this node: the other nodes do not have it. */
CONSENT_FUNCTION(consent_cluster_call)
{
    return entry([&]() -> Datum {
        struct Local {
            FmgrInfo fn;
            bool about_relation; /* its first argument is a regclass */
            bool makes_types;    /* its DDL makes or drops types, which each node does itself */
        };
        auto *local = static_cast<Local *>(fcinfo->flinfo->fn_extra);
        if (!local) {
            local = pg([&] {
                HeapTuple tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(fcinfo->flinfo->fn_oid));
                if (!HeapTupleIsValid(tup))
                    elog(ERROR, "cache lookup failed for function %u", fcinfo->flinfo->fn_oid);
                auto *proc = (Form_pg_proc)GETSTRUCT(tup);
                Oid fn = LookupFuncName(list_make2(makeString(pstrdup("consent_local")),
                                                   makeString(pstrdup(NameStr(proc->proname)))),
                                        proc->pronargs, proc->proargtypes.values, false);
                auto *l = static_cast<Local *>(MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(Local)));
                l->about_relation = proc->pronargs > 0 && proc->proargtypes.values[0] == REGCLASSOID;
                l->makes_types = strcmp(NameStr(proc->proname), "define_category") == 0 ||
                                 strcmp(NameStr(proc->proname), "drop_category") == 0;
                ReleaseSysCache(tup);
                fmgr_info_cxt(fn, &l->fn, fcinfo->flinfo->fn_mcxt);
                return l;
            });
            fcinfo->flinfo->fn_extra = local;
        }
        bool own_ddl = local->makes_types && citus::active();
        Datum result = pg([&] {
            /* the forwarded call makes the type on each other node: Citus
             * must not send the CREATE DOMAIN too */
            int nest = own_ddl ? NewGUCNestLevel() : 0;
            if (own_ddl)
                (void)set_config_option("citus.enable_ddl_propagation", "off", PGC_USERSET, PGC_S_SESSION,
                                        GUC_ACTION_LOCAL, true, 0, false);
            LOCAL_FCINFO(call, FUNC_MAX_ARGS);
            InitFunctionCallInfoData(*call, &local->fn, fcinfo->nargs, fcinfo->fncollation, fcinfo->context, nullptr);
            for (int i = 0; i < fcinfo->nargs; i++)
                call->args[i] = fcinfo->args[i];
            Datum d = FunctionCallInvoke(call);
            fcinfo->isnull = call->isnull;
            if (own_ddl)
                AtEOXact_GUC(true, nest);
            return d;
        });
        bool isnull = fcinfo->isnull;
        if (!local->about_relation ||
            (!fcinfo->args[0].isnull && citus::is_citus_table(DatumGetObjectId(fcinfo->args[0].value))))
            citus::forward_call(fcinfo);
        fcinfo->isnull = isnull;
        return result;
    });
}

/* consent._refuse_on_cluster(what): 0A000 when this database is a node of
 * a Citus cluster with other nodes (what would change this node only). */
CONSENT_FUNCTION(consent_refuse_on_cluster)
{
    return entry([&]() -> Datum {
        if (!citus::active())
            PG_RETURN_VOID();
        std::vector<Row> rows;
        {
            Spi spi;
            rows = spi.query("SELECT count(*) FROM pg_dist_node n WHERE n.isactive AND n.noderole = 'primary' "
                             "AND n.groupid <> (SELECT groupid FROM pg_dist_local_group)");
        }
        if (!rows.empty() && rows[0][0] && rows[0][0].value() != "0") {
            std::string what = PG_ARGISNULL(0) ? "this" : pg([&] { return std::string(text_to_cstring(PG_GETARG_TEXT_PP(0))); });
            throw Error(ERRCODE_FEATURE_NOT_SUPPORTED, what + " is not supported on a Citus cluster",
                        "Its changes would stay on this node; the cluster's other nodes would not learn of them.",
                        "Record the events with consent.grant() and consent.withdraw(), which reach every node.");
        }
        PG_RETURN_VOID();
    });
}

/* consent._send_to_node(node_name, node_port, command): runs command on
 * one node of the cluster, in the coordinated transaction (two-phase
 * commit), as the current user (consent.citus_sync_node()). */
CONSENT_FUNCTION(consent_send_to_node)
{
    return entry([&]() -> Datum {
        if (!citus::active())
            throw Error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE, "Citus is not installed in this database");
        pg([&] {
            char *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
            int32 port = PG_GETARG_INT32(1);
            char *command = text_to_cstring(PG_GETARG_TEXT_PP(2));
            citus::api.send_to_worker(name, port, command);
        });
        PG_RETURN_VOID();
    });
}
