"""
    PDEForge

The Julia side of pdeforge's Julia backend, loaded into a juliacall session by
`pdeforge.backends.julia_bridge` (`include` of this file; the packages come from the
repository's Project.toml / pdeforge's juliapkg.json).

What it does with what Python sends (Julia expression text written by pdeforge's
`JuliaPrinter`, read here by an allow-list walker, never `eval`ed):

  * `simplify_texts`: Symbolics `simplify` of stencil expressions (plain and expanded forms),
    printed back as fully parenthesized Julia text for pdeforge's Julia-syntax reader;
  * `build_kernel` / `apply_kernel!`: per-cell stencil functions from `build_function`
    (serial form, in place), the stencil Jacobian from `sparsejacobian`, and loop drivers
    over the padded NumPy arrays (shared memory, C order read through explicit strides),
    serial or `Threads.@threads`;
  * `trace_system` / `traced_rhs!` / `traced_jac!`: the whole semi-discrete system of one grid
    traced into one symbolic vector, as in the Symbolics.jl auto-parallel tutorial, compiled
    with `build_function(...; parallel = Symbolics.MultithreadedForm())` (in place) together
    with its `sparsejacobian`;
  * `mol_solve`: the MethodOfLines route, `PDESystem` -> `MOLFiniteDifference` ->
    `discretize` -> `solve`, returning the solution on the MethodOfLines grid.

Every generated function takes all the names its expressions use as arguments (stencil
values, invariants, parameters, cell widths, coordinates, t): a name left free would be
looked up as a global of this module and fail (`UndefVarError`).
"""
module PDEForge

using Symbolics
using SymbolicUtils
using SparseArrays
using SpecialFunctions: erf
using ModelingToolkit
using MethodOfLines
using DomainSets: Interval
using OrdinaryDiffEq
using OrdinaryDiffEqLowOrderRK: Euler, RK4, DP5
using OrdinaryDiffEqSSPRK: SSPRK33
using Base.Threads: nthreads, @threads
using RuntimeGeneratedFunctions

# `build_function(...; expression = Val{false}, expression_module = @__MODULE__)` makes this
# module the cache and context module of the generated functions; RuntimeGeneratedFunctions
# refuses modules that were not initialised at top level ("You must use
# `RuntimeGeneratedFunctions.init(@__MODULE__)` at module top level", RuntimeGeneratedFunctions
# 0.5.25 src/RuntimeGeneratedFunctions.jl:146-156).
RuntimeGeneratedFunctions.init(@__MODULE__)

export heaviside

# ---------------------------------------------------------------------------------------------
# The equation language's functions

"""
    heaviside(a, h0)

Heaviside step with value `h0` at 0, written with `ifelse` so that Symbolics traces it and
generated code branches without `if`.
"""
heaviside(a, h0) = ifelse(a > zero(a), one(a), ifelse(a < zero(a), zero(a), oftype(one(a), h0)))

const FUNCTIONS = Dict{Symbol,Any}(
    :+ => +, :- => -, :* => *, :/ => /, :^ => ^, :// => //, :inv => inv,
    :< => <, :<= => <=, :> => >, :>= => >=, :(==) => ==, :!= => !=,
    :& => &, :| => |, :! => !,
    :exp => exp, :log => log, :sqrt => sqrt, :sin => sin, :cos => cos, :tan => tan,
    :sinh => sinh, :cosh => cosh, :tanh => tanh, :atan => atan, :erf => erf,
    :abs => abs, :sign => sign, :min => min, :max => max,
    :ifelse => ifelse, :heaviside => heaviside,
)
# `:if` written as a Symbol call: some Julia tooling (tree-sitter-julia) reads `:if` as a keyword
const IF_HEAD = Symbol("if")
const CONSTANTS = Dict{Symbol,Any}(:pi => pi, :π => pi, :NaN => NaN, :Inf => Inf, :true => true, :false => false)

"""
    ReadContext

Names an expression may use: `vars` (symbol -> value: variables, numbers, callables such as
ModelingToolkit dependent variables) and, for stencil expressions, `stencil(field, offsets)`
which returns the variable of a field at an offset.
"""
struct ReadContext
    vars::Dict{Symbol,Any}
    stencil::Union{Nothing,Function}
    derivatives::Bool
end
ReadContext(vars; stencil = nothing, derivatives = false) = ReadContext(vars, stencil, derivatives)

"""
    read_expr(text, ctx)

Parse Julia expression `text` (one expression) and build its value by walking the syntax
tree: only numbers, names in `ctx`, the functions of `FUNCTIONS`, `stencil(...)` and (when
`ctx.derivatives`) `Differential(x)` are allowed. Nothing is evaluated by `eval`.
"""
function read_expr(text::AbstractString, ctx::ReadContext)
    ex = Meta.parse(text; raise = true)
    return walk(ex, ctx)
end

walk(ex::Number, ctx::ReadContext) = ex
walk(ex, ctx::ReadContext) = throw(ArgumentError("$(typeof(ex)) is not allowed in an expression"))
function walk(ex::Symbol, ctx::ReadContext)
    haskey(ctx.vars, ex) && return ctx.vars[ex]
    haskey(CONSTANTS, ex) && return CONSTANTS[ex]
    throw(ArgumentError("unknown name $ex"))
end
function walk(ex::Expr, ctx::ReadContext)
    if ex.head === :call
        f = ex.args[1]
        args = ex.args[2:end]
        if f === :stencil
            ctx.stencil === nothing && throw(ArgumentError("stencil(...) is not allowed here"))
            field = args[1]
            field isa Symbol || throw(ArgumentError("stencil(field, offsets...) needs a field name"))
            offsets = map(a -> walk(a, ctx), args[2:end])
            all(o -> o isa Integer, offsets) || throw(ArgumentError("stencil offsets must be integers"))
            return ctx.stencil(field, Int[offsets...])
        end
        if f === :Differential
            ctx.derivatives || throw(ArgumentError("Differential is not allowed here"))
            length(args) == 1 || throw(ArgumentError("Differential takes one coordinate"))
            return Differential(walk(args[1], ctx))
        end
        callee = if f isa Symbol
            haskey(FUNCTIONS, f) ? FUNCTIONS[f] : walk(f, ctx)
        elseif f isa Expr
            walk(f, ctx)  # (Differential(x)^2)(u(t, x)) and the like
        else
            throw(ArgumentError("cannot call $f"))
        end
        # callee came from FUNCTIONS, the context's names or a Differential: all allow-listed
        return callee(map(a -> walk(a, ctx), args)...)
    elseif ex.head === :comparison  # a < b < c
        parts = ex.args
        result = nothing
        for k in 1:2:(length(parts) - 2)
            op = FUNCTIONS[parts[k + 1]]
            c = op(walk(parts[k], ctx), walk(parts[k + 2], ctx))
            result = result === nothing ? c : (result & c)
        end
        return result
    elseif ex.head === IF_HEAD  # `c ? a : b`
        return ifelse(walk(ex.args[1], ctx), walk(ex.args[2], ctx), walk(ex.args[3], ctx))
    elseif ex.head === :&&
        return walk(ex.args[1], ctx) & walk(ex.args[2], ctx)
    elseif ex.head === :||
        return walk(ex.args[1], ctx) | walk(ex.args[2], ctx)
    end
    throw(ArgumentError("$(ex.head) syntax is not allowed"))
end

# ---------------------------------------------------------------------------------------------
# Symbolic values back to text

const BINARY_TEXT = Dict{Symbol,String}(
    :+ => " + ", :* => " * ", :- => " - ", :/ => " / ", :^ => " ^ ", :// => " // ",
    :& => " & ", :| => " | ", :< => " < ", :<= => " <= ", :> => " > ", :>= => " >= ",
    :(==) => " == ", :!= => " != ",
)

opname(f::Symbol) = f
opname(f::GlobalRef) = f.name
opname(f::Function) = nameof(f)
opname(f) = throw(ArgumentError("cannot print operation $f"))

"""
    to_text(x, names)

Fully parenthesized Julia text of symbolic value `x` (through `SymbolicUtils.Code.toexpr`);
`names` maps variable names to the text that stands for them (stencil accesses).
"""
to_text(x, names::Dict{Symbol,String}) = expr_text(SymbolicUtils.Code.toexpr(Symbolics.unwrap(x)), names)

expr_text(ex::Symbol, names) = get(names, ex, string(ex))
expr_text(ex::Bool, names) = ex ? "true" : "false"
expr_text(ex::Integer, names) = ex < 0 ? "($(ex))" : string(ex)
expr_text(ex::Rational, names) = "($(numerator(ex)) // $(denominator(ex)))"
function expr_text(ex::AbstractFloat, names)
    isfinite(ex) || return isnan(ex) ? "NaN" : (ex > 0 ? "Inf" : "(-Inf)")
    s = repr(Float64(ex))
    return ex < 0 ? "($s)" : s
end
expr_text(ex::Irrational{:π}, names) = "pi"
expr_text(ex::Irrational{:ℯ}, names) = "exp(1)"
function expr_text(ex::Expr, names)
    if ex.head === IF_HEAD
        return "ifelse($(expr_text(ex.args[1], names)), $(expr_text(ex.args[2], names)), $(expr_text(ex.args[3], names)))"
    end
    ex.head === :call || throw(ArgumentError("cannot print $(ex.head) expressions"))
    name = opname(ex.args[1])
    operands = ex.args[2:end]
    if name in (:+, :*)
        # toexpr nests sums and products pairwise; print them flat (shallow text reads back easily)
        flat = Any[]
        stack = reverse(operands)
        while !isempty(stack)
            a = pop!(stack)
            if a isa Expr && a.head === :call && length(a.args) >= 3 &&
               a.args[1] isa Union{Symbol,GlobalRef,Function} && opname(a.args[1]) === name
                append!(stack, reverse(a.args[2:end]))
            else
                push!(flat, a)
            end
        end
        operands = flat
    end
    args = [expr_text(a, names) for a in operands]
    if name === :- && length(args) == 1
        return "(-$(args[1]))"
    elseif name === :! && length(args) == 1
        return "!($(args[1]))"
    elseif name === :inv && length(args) == 1
        return "(1 / $(args[1]))"
    elseif haskey(BINARY_TEXT, name) && length(args) >= 2
        return "(" * join(args, BINARY_TEXT[name]) * ")"
    end
    return "$(name)(" * join(args, ", ") * ")"
end

# ---------------------------------------------------------------------------------------------
# Stencil variables

offset_name(offs) = join([(o > 0 ? "p" : o < 0 ? "m" : "") * string(abs(o)) for o in offs], "_")

"""
    StencilTable(fields)

Symbolic variables of field values at integer offsets, created on first use and named like
pdeforge's stencil symbols (`u_p1_0` is u at offset (+1, 0)).
"""
struct StencilTable
    fields::Vector{Symbol}
    vars::Vector{Num}
    keys::Vector{Tuple{Int,Vector{Int}}}
    index::Dict{Tuple{Int,Vector{Int}},Int}
end
StencilTable(fields) = StencilTable(fields, Num[], Tuple{Int,Vector{Int}}[], Dict{Tuple{Int,Vector{Int}},Int}())

function stencil_var!(table::StencilTable, field::Symbol, offs::Vector{Int})
    f = findfirst(==(field), table.fields)
    f === nothing && throw(ArgumentError("stencil of unknown field $field"))
    key = (f - 1, offs)
    k = get(table.index, key, 0)
    if k == 0
        push!(table.vars, Symbolics.variable(Symbol(field, "_", offset_name(offs))))
        push!(table.keys, key)
        k = length(table.vars)
        table.index[key] = k
    end
    return table.vars[k]
end

function stencil_names(table::StencilTable)
    Dict{Symbol,String}(
        Symbolics.tosymbol(v; escape = false) => "stencil($(table.fields[f + 1]), $(join(offs, ", ")))"
        for (v, (f, offs)) in zip(table.vars, table.keys))
end

as_num(v) = v isa Num ? v : Num(v)

named_vars(names) = Dict{Symbol,Any}(Symbol(n) => Symbolics.variable(Symbol(n)) for n in names)

# ---------------------------------------------------------------------------------------------
# Simplification

"""
    simplify_texts(fields, names, texts) -> String

`fields`: space-separated field names; `names`: space-separated other variable names
(parameters, cell widths, coordinates, t); `texts`: one stencil expression per line.
Returns one line per expression: `simplify(e)` and `simplify(e; expand = true)` as text,
separated by a tab.
"""
function simplify_texts(fields::AbstractString, names::AbstractString, texts::AbstractString)
    table = StencilTable(Symbol.(split(fields)))
    vars = named_vars(split(names))
    ctx = ReadContext(vars; stencil = (f, o) -> stencil_var!(table, f, o))
    exprs = [read_expr(line, ctx) for line in split(texts, '\n') if !isempty(strip(line))]
    back = stencil_names(table)
    lines = String[]
    for e in exprs
        plain = Symbolics.simplify(e)
        expanded = Symbolics.simplify(e; expand = true)
        push!(lines, to_text(plain, back) * "\t" * to_text(expanded, back))
    end
    return join(lines, '\n')
end

# ---------------------------------------------------------------------------------------------
# Kernel specifications (written by pdeforge.codegen.julia_target)

struct KernelSpec
    fields::Vector{Symbol}
    dim::Int
    ghost::Vector{Int}
    params::Vector{Num}
    spacing::Vector{Num}
    coords::Vector{Num}
    t::Num
    invariant_names::Vector{Num}
    invariants::Vector{Num}
    rhs::Vector{Num}
    jac::Vector{Tuple{Int,Tuple{Int,Vector{Int}}}}
    table::StencilTable
end

"""
    parse_spec(text) -> KernelSpec

Lines `key value...`: `fields`, `ghost`, `params`, `spacing`, `coords` (names), then
`invariant NAME EXPR` (loop invariants, in order), `rhs EXPR` (one per field) and
`jac ROW FIELD OFFSETS...` (the Jacobian entries, in the order the kernel writes them).
"""
function parse_spec(text::AbstractString)
    kv = Dict{String,Vector{String}}()
    invariant_lines = Tuple{String,String}[]
    rhs_lines = String[]
    jac = Tuple{Int,Tuple{Int,Vector{Int}}}[]
    for raw in split(text, '\n')
        line = strip(raw)
        isempty(line) && continue
        key, rest = occursin(' ', line) ? split(line, ' '; limit = 2) : (line, "")
        if key == "invariant"
            name, ex = split(rest, ' '; limit = 2)
            push!(invariant_lines, (String(name), String(ex)))
        elseif key == "rhs"
            push!(rhs_lines, String(rest))
        elseif key == "jac"
            nums = parse.(Int, split(rest))
            push!(jac, (nums[1], (nums[2], nums[3:end])))
        else
            kv[String(key)] = String.(split(rest))
        end
    end
    fields = Symbol.(kv["fields"])
    dim = length(kv["ghost"])
    table = StencilTable(fields)
    vars = Dict{Symbol,Any}()
    mk(names) = [get!(vars, Symbol(n), Symbolics.variable(Symbol(n))) for n in names]
    params = mk(get(kv, "params", String[]))
    spacing = mk(kv["spacing"])
    coords = mk(kv["coords"])
    t = only(mk(["t"]))
    ctx = ReadContext(vars; stencil = (f, o) -> stencil_var!(table, f, o))
    inv_names = Num[]
    invs = Num[]
    for (name, ex) in invariant_lines
        push!(invs, as_num(read_expr(ex, ctx)))
        v = Symbolics.variable(Symbol(name))
        vars[Symbol(name)] = v
        push!(inv_names, v)
    end
    rhs = Num[as_num(read_expr(ex, ctx)) for ex in rhs_lines]
    # every stencil value the Jacobian names must exist even if an output does not read it
    for (_, (g, offs)) in jac
        stencil_var!(table, fields[g + 1], offs)
    end
    return KernelSpec(fields, dim, parse.(Int, kv["ghost"]), params, spacing, coords, t, inv_names, invs, rhs, jac, table)
end

"""
    stencil_jacobian(spec) -> Vector{Num}

The requested entries of `sparsejacobian(rhs, stencil variables)`: d rhs_row / d field at
offset, zero where Symbolics finds no dependence.
"""
function stencil_jacobian(spec::KernelSpec)
    J = Symbolics.sparsejacobian(spec.rhs, spec.table.vars)
    return Num[J[row + 1, spec.table.index[key]] for (row, key) in spec.jac]
end

# Lazy views of one cell: the generated code reads `s[k]` and writes `out[k] = v`.
struct CellStencil{N} <: AbstractVector{Float64}
    data::Vector{Float64}
    base::Int
    offsets::NTuple{N,Int}
end
Base.size(::CellStencil{N}) where {N} = (N,)
Base.@propagate_inbounds Base.getindex(s::CellStencil, k::Int) = s.data[s.base + s.offsets[k]]

struct CellOutput <: AbstractVector{Float64}
    data::Vector{Float64}
    base::Int
    stride::Int
    n::Int
end
Base.size(o::CellOutput) = (o.n,)
Base.@propagate_inbounds Base.getindex(o::CellOutput, k::Int) = o.data[o.base + (k - 1) * o.stride]
Base.@propagate_inbounds Base.setindex!(o::CellOutput, v, k::Int) = (o.data[o.base + (k - 1) * o.stride] = v)

struct CellKernel
    spec::KernelSpec
    ninv::Int
    invariants!::Any
    rhs!::Any
    jac!::Any
    njac::Int
end

const KERNELS = CellKernel[]

"""
    cell_arguments(spec, state)

The argument tuple of the per-cell (`state` = the stencil variables) and traced (`state` =
the padded state `U`) functions: everything a right-hand side line may name.
"""
cell_arguments(spec::KernelSpec, state) = (state, spec.invariant_names, spec.params, spec.spacing, spec.coords, spec.t)

function _iip(exprs::Vector{Num}, args...)
    # in-place, serial form; RuntimeGeneratedFunctions in this module, no world-age issues
    f = build_function(exprs, args...; expression = Val{false}, expression_module = @__MODULE__, cse = true)
    return f[2]
end

"""
    build_kernel(spec_text) -> Int

Build the per-cell right-hand side and Jacobian functions of a kernel specification with
`build_function` and return its handle for `apply_kernel!`.
"""
function build_kernel(spec_text::AbstractString)
    spec = parse_spec(spec_text)
    ninv = length(spec.invariants)
    invf = ninv == 0 ? nothing : _iip(spec.invariants, spec.params, spec.spacing, spec.t)
    args = cell_arguments(spec, spec.table.vars)
    rhsf = _iip(spec.rhs, args...)
    jacx = stencil_jacobian(spec)
    jacf = isempty(jacx) ? nothing : _iip(jacx, args...)
    push!(KERNELS, CellKernel(spec, ninv, invf, rhsf, jacf, length(jacx)))
    return length(KERNELS)
end

"""Field and stencil offsets as linear offsets into a C-ordered padded array."""
function linear_offsets(spec::KernelSpec, pshape::NTuple{D,Int}) where {D}
    pstride = ntuple(a -> prod(pshape[(a + 1):end]; init = 1), D)
    fstride = prod(pshape)
    return Tuple(f * fstride + sum(offs[a] * pstride[a] for a in 1:D) for (f, offs) in spec.table.keys), pstride
end

wrap_array(addr::Integer, n::Integer) = unsafe_wrap(Vector{Float64}, Ptr{Float64}(UInt(addr)), Int(n); own = false)

"""
    apply_kernel!(id, which, threaded, S, nS, OUT, nOUT, t, p, np, h, nh, shape, coords)

Evaluate kernel `id` (`which` = 1: right-hand side, 2: Jacobian entries) on every cell.
`S`, `OUT`, `p`, `h` and the entries of `coords` are addresses of C-ordered Float64 NumPy
buffers (shared, not copied) with their lengths; `S` is the padded state (fields, n0 + 2g0,
...), `OUT` receives (outputs, n0, ...). `shape` is the grid's cells per axis.
"""
function apply_kernel!(id::Integer, which::Integer, threaded::Bool, S::Integer, nS::Integer, OUT::Integer,
                       nOUT::Integer, t::Real, p::Integer, np::Integer, h::Integer, nh::Integer,
                       shape::Tuple, coords::Tuple)
    k = KERNELS[id]
    D = length(shape)
    shp = ntuple(a -> Int(shape[a]), D)
    ghost = ntuple(a -> k.spec.ghost[a], D)
    pshape = ntuple(a -> shp[a] + 2 * ghost[a], D)
    Sv = wrap_array(S, nS)
    Ov = wrap_array(OUT, nOUT)
    nf = length(k.spec.fields)
    length(Sv) == nf * prod(pshape) || throw(DimensionMismatch("padded state has $(length(Sv)) values, expected $(nf * prod(pshape))"))
    nout = which == 1 ? length(k.spec.rhs) : k.njac
    length(Ov) == nout * prod(shp) || throw(DimensionMismatch("output has $(length(Ov)) values, expected $(nout * prod(shp))"))
    nout == 0 && return nothing
    pv = wrap_array(p, np)
    hv = wrap_array(h, nh)
    cs = ntuple(a -> wrap_array(coords[2a - 1], coords[2a]), D)
    c = zeros(k.ninv)
    k.ninv > 0 && k.invariants!(c, pv, hv, Float64(t))
    offsets, pstride = linear_offsets(k.spec, pshape)
    f! = which == 1 ? k.rhs! : k.jac!
    run_cells!(f!, Ov, Sv, nout, offsets, shp, ghost, pstride, c, pv, hv, cs, Float64(t), threaded && nthreads() > 1)
    return nothing
end

"""The loop over cells (function barrier: everything below is concretely typed)."""
function run_cells!(f!::F, OUT::Vector{Float64}, S::Vector{Float64}, nout::Int, offsets::NTuple{N,Int},
                    shape::NTuple{D,Int}, ghost::NTuple{D,Int}, pstride::NTuple{D,Int}, c::Vector{Float64},
                    p::Vector{Float64}, h::Vector{Float64}, coords::NTuple{D,Vector{Float64}}, t::Float64,
                    threaded::Bool) where {F,N,D}
    ncell = prod(shape)
    cstride = ntuple(a -> prod(shape[(a + 1):end]; init = 1), D)
    inner = CartesianIndices(reverse(Base.tail(shape)))  # last C axis fastest
    @inline function slab(i1::Int)
        @inbounds for I in inner
            idx = (i1, ntuple(a -> I[D - a] - 1, D - 1)...)
            pbase = 1
            obase = 1
            for a in 1:D
                pbase += (idx[a] + ghost[a]) * pstride[a]
                obase += idx[a] * cstride[a]
            end
            X = ntuple(a -> coords[a][idx[a] + 1], D)
            f!(CellOutput(OUT, obase, ncell, nout), CellStencil{N}(S, pbase, offsets), c, p, h, X, t)
        end
    end
    if threaded
        @threads :static for i1 in 0:(shape[1] - 1)
            slab(i1)
        end
    else
        for i1 in 0:(shape[1] - 1)
            slab(i1)
        end
    end
    return nothing
end

# ---------------------------------------------------------------------------------------------
# The whole system of one grid, traced (Symbolics.jl auto-parallel tutorial)

struct TracedSystem
    spec::KernelSpec
    npad::Int
    nout::Int
    rhs!::Any
    jac!::Any
    jac_pattern::SparseMatrixCSC{Float64,Int}
    invariants!::Any
    coords::Vector{Float64}
end

const TRACED = TracedSystem[]

"""
    trace_system(spec_text, shape, coords) -> Int

Substitute every cell of a grid with `shape` cells per axis (cell-centre coordinates given
per axis in `coords`) into the stencil expressions, giving the semi-discrete right-hand side
as one vector of expressions in the padded state `U`; compile it and its `sparsejacobian`
with `build_function(...; parallel = Symbolics.MultithreadedForm())`, in place.
"""
function trace_system(spec_text::AbstractString, shape::Tuple, coords::Tuple)
    spec = parse_spec(spec_text)
    D = length(shape)
    shp = ntuple(a -> Int(shape[a]), D)
    ghost = ntuple(a -> spec.ghost[a], D)
    pshape = ntuple(a -> shp[a] + 2 * ghost[a], D)
    nf = length(spec.fields)
    npad = nf * prod(pshape)
    U = [Symbolics.variable(:U, k) for k in 1:npad]
    offsets, pstride = linear_offsets(spec, pshape)
    cstride = ntuple(a -> prod(shp[(a + 1):end]; init = 1), D)
    ncell = prod(shp)
    outs = Vector{Num}(undef, nf * ncell)
    for I in CartesianIndices(reverse(shp))
        idx = ntuple(a -> I[D + 1 - a] - 1, D)
        pbase = 1 + sum((idx[a] + ghost[a]) * pstride[a] for a in 1:D)
        obase = 1 + sum(idx[a] * cstride[a] for a in 1:D)
        sub = Dict{Num,Any}(v => U[pbase + offsets[j]] for (j, v) in enumerate(spec.table.vars))
        for a in 1:D
            sub[spec.coords[a]] = Float64(coords[a][idx[a] + 1])
        end
        for f in 1:nf
            outs[obase + (f - 1) * ncell] = Symbolics.substitute(spec.rhs[f], sub)
        end
    end
    form = Symbolics.MultithreadedForm()
    # the coordinates are substituted by numbers; they stay in the argument list (unused)
    args = cell_arguments(spec, U)
    rhsf = build_function(outs, args...; parallel = form,
                          expression = Val{false}, expression_module = @__MODULE__)[2]
    Jsym = Symbolics.sparsejacobian(outs, U)
    jacf = build_function(Jsym, args...; parallel = form,
                          expression = Val{false}, expression_module = @__MODULE__)[2]
    pattern = SparseMatrixCSC(size(Jsym)..., copy(Jsym.colptr), copy(Jsym.rowval), zeros(length(Jsym.nzval)))
    invf = isempty(spec.invariants) ? nothing :
           build_function(spec.invariants, spec.params, spec.spacing, spec.t; expression = Val{false},
                          expression_module = @__MODULE__)[2]
    push!(TRACED, TracedSystem(spec, npad, length(outs), rhsf, jacf, pattern, invf, zeros(length(spec.coords))))
    return length(TRACED)
end

"""Column pointers and row indices (1-based) of a traced system's Jacobian, CSC."""
traced_pattern(id::Integer) = (TRACED[id].jac_pattern.colptr, TRACED[id].jac_pattern.rowval, size(TRACED[id].jac_pattern))

function _traced_invariants(ts::TracedSystem, p, np, h, nh, t)
    c = zeros(length(ts.spec.invariants))
    ts.invariants! === nothing || ts.invariants!(c, wrap_array(p, np), wrap_array(h, nh), Float64(t))
    return c
end

"""Right-hand side of traced system `id` at padded state `U` into `OUT` (NumPy buffers)."""
function traced_rhs!(id::Integer, U::Integer, nU::Integer, OUT::Integer, nOUT::Integer, t::Real,
                     p::Integer, np::Integer, h::Integer, nh::Integer)
    ts = TRACED[id]
    (nU == ts.npad && nOUT == ts.nout) || throw(DimensionMismatch("traced system sizes differ"))
    ts.rhs!(wrap_array(OUT, nOUT), wrap_array(U, nU), _traced_invariants(ts, p, np, h, nh, t), wrap_array(p, np),
            wrap_array(h, nh), ts.coords, Float64(t))
    return nothing
end

"""Values of the traced Jacobian (d rhs / d padded state, CSC order) into `NZ`."""
function traced_jac!(id::Integer, U::Integer, nU::Integer, NZ::Integer, nNZ::Integer, t::Real,
                     p::Integer, np::Integer, h::Integer, nh::Integer)
    ts = TRACED[id]
    pat = ts.jac_pattern
    nNZ == length(pat.nzval) || throw(DimensionMismatch("Jacobian has $(length(pat.nzval)) entries"))
    J = SparseMatrixCSC(pat.m, pat.n, pat.colptr, pat.rowval, wrap_array(NZ, nNZ))
    ts.jac!(J, wrap_array(U, nU), _traced_invariants(ts, p, np, h, nh, t), wrap_array(p, np), wrap_array(h, nh),
            ts.coords, Float64(t))
    return nothing
end

# ---------------------------------------------------------------------------------------------
# MethodOfLines

"""A cell-centred table of initial values, looked up by the cell that contains a point."""
struct GridTable{N}
    data::Array{Float64,N}
    lo::NTuple{N,Float64}
    h::NTuple{N,Float64}
    periodic::NTuple{N,Bool}
end

function lookup(tab::GridTable{N}, xs::NTuple{N,Real}) where {N}
    idx = ntuple(N) do a
        n = size(tab.data, a)
        i = floor(Int, (xs[a] - tab.lo[a]) / tab.h[a]) + 1
        tab.periodic[a] ? mod1(i, n) : clamp(i, 1, n)
    end
    return tab.data[idx...]
end

const TABLES = GridTable[]

sampled1(k, x) = lookup(TABLES[Int(k)], (x,))
sampled2(k, x, y) = lookup(TABLES[Int(k)], (x, y))
sampled3(k, x, y, z) = lookup(TABLES[Int(k)], (x, y, z))
@register_symbolic sampled1(k, x)
@register_symbolic sampled2(k, x, y)
@register_symbolic sampled3(k, x, y, z)

"""
    add_table(addr, n, shape, lo, h, periodic) -> Int

Copy a C-ordered NumPy array of cell values (shape `shape`) into a lookup table usable as
`sampledD(k, x...)` in initial conditions; returns `k`.
"""
function add_table(addr::Integer, n::Integer, shape::Tuple, lo::Tuple, h::Tuple, periodic::Tuple)
    N = length(shape)
    flat = copy(wrap_array(addr, n))
    # C order (n0, n1, ...) is column-major (..., n1, n0): reverse the axes back
    data = permutedims(reshape(flat, reverse(Int.(shape))...), N:-1:1)
    push!(TABLES, GridTable{N}(data, Float64.(lo), Float64.(h), Bool.(periodic)))
    return length(TABLES)
end

"""Forget the initial-condition tables (they are needed only while discretizing)."""
clear_tables!() = (empty!(TABLES); nothing)

"""
    mol_axis(lo, hi, n, edge) -> Int or Vector{Float64}

What to give `MOLFiniteDifference` for an axis of `n` points on `[lo, hi]` (`edge`: `n` cells of
an `edge_align` grid, whose `n + 1` faces span the domain; else `n` nodes of `center_align`).
MethodOfLines turns the count into the float range `lo:dx:hi` and, when rounding leaves its
last point short of `hi`, appends `hi` as one more, nearly coincident point (MethodOfLines
0.11.20 src/discretization/discretize_vars.jl:222-229). The count is kept when that range is
exact; otherwise the same points are given as a vector with exact ends, which MethodOfLines
uses as they are.
"""
function mol_axis(lo::Float64, hi::Float64, n::Int, edge::Bool)
    m = edge ? n + 1 : n
    r = lo:((hi - lo) / (m - 1)):hi  # MethodOfLines' prepare_dx and range
    (length(r) == m && r[end] == hi) && return n
    g = collect(Float64, range(lo, hi; length = m))
    g[1], g[end] = lo, hi
    return g
end

# every method of pdeforge.julia.methodoflines.ALGORITHMS (a test keeps the two tables equal)
const ALGORITHMS = Dict{String,Any}(
    "euler" => Euler, "rk4" => RK4, "ssprk3" => SSPRK33, "rk45" => DP5,
    "bdf" => FBDF, "scipy-bdf" => FBDF, "rosenbrock23" => Rosenbrock23,
)

"""
    mol_solve(spec_text) -> (t, grids, values)

Build and solve a MethodOfLines problem. `spec_text` lines:
`coords x y`, `fields u v`, `domain x LOW HIGH POINTS` per axis, `align edge|center`,
`order 2`, `eq FIELD EXPR` (d field / dt = EXPR), `bc LHS<TAB>RHS`, `ic FIELD EXPR` (the value
at `t = T0`), `time T0 T1`, `saveat T...`, `method NAME [dt DT] [rtol R] [atol A]` and the
optional `advection weno` (mixed derivatives), `strategy array` (MethodOfLines'
`ArrayDiscretization()`) and `jacobian sparse` (`jac = true, sparse = true`). Expressions use
`u(t, x, y)`, `Differential(x)`, the equation-language functions and `sampledD(k, ...)`
tables. Returns the save times, the grid of every axis and one array (t, x, ...) per field.
"""
function mol_solve(spec_text::AbstractString)
    lines = [strip(l) for l in split(spec_text, '\n') if !isempty(strip(l))]
    get1(key) = [split(l, ' '; limit = 2)[2] for l in lines if startswith(l, key * " ")]
    coord_names = Symbol.(split(only(get1("coords"))))
    field_names = Symbol.(split(only(get1("fields"))))
    # ModelingToolkit 11 warns about independent variables made with @variables
    t = only(@independent_variables t)
    vars = Dict{Symbol,Any}(:t => t)
    coords = Num[]
    for c in coord_names
        v = only(@independent_variables $c)
        vars[c] = v
        push!(coords, v)
    end
    fields = Any[]
    for f in field_names
        u = only(@variables $f(..))
        vars[f] = u
        push!(fields, u)
    end
    vars[:sampled1] = sampled1
    vars[:sampled2] = sampled2
    vars[:sampled3] = sampled3
    ctx = ReadContext(vars; derivatives = true)
    Dt = Differential(t)
    applied = [u(t, coords...) for u in fields]
    eqs = Equation[]
    for l in get1("eq")
        name, ex = split(l, ' '; limit = 2)
        k = findfirst(==(Symbol(name)), field_names)
        push!(eqs, Dt(applied[k]) ~ read_expr(ex, ctx))
    end
    bcs = Equation[]
    for l in get1("bc")
        lhs, rhs = split(l, '\t')
        push!(bcs, read_expr(lhs, ctx) ~ read_expr(rhs, ctx))
    end
    t0, t1 = parse.(Float64, split(only(get1("time"))))
    # PDEBase reads an initial condition only at the start of the time domain, Interval(t0, t1)
    for l in get1("ic")
        name, ex = split(l, ' '; limit = 2)
        k = findfirst(==(Symbol(name)), field_names)
        push!(bcs, fields[k](t0, coords...) ~ read_expr(ex, ctx))
    end
    domains = Any[t ∈ Interval(t0, t1)]
    dxs = Pair[]
    edge = only(get1("align")) == "edge"
    for l in get1("domain")
        name, lo, hi, n = split(l)
        v = vars[Symbol(name)]
        a, b = parse(Float64, lo), parse(Float64, hi)
        push!(domains, v ∈ Interval(a, b))
        push!(dxs, v => mol_axis(a, b, parse(Int, n), edge))
    end
    align = edge ? edge_align : center_align
    order = parse(Int, only(get1("order")))
    options = Dict{Symbol,Any}(:approx_order => order, :grid_align => align)
    "weno" in get1("advection") && (options[:advection_scheme] = WENOScheme())
    "array" in get1("strategy") && (options[:discretization_strategy] = ArrayDiscretization())
    @named pdesys = PDESystem(eqs, bcs, domains, [t, coords...], applied)
    disc = MOLFiniteDifference(dxs, t; options...)
    prob = "sparse" in get1("jacobian") ? discretize(pdesys, disc; jac = true, sparse = true) : discretize(pdesys, disc)
    saveat = parse.(Float64, split(only(get1("saveat"))))
    words = split(only(get1("method")))
    opts = Dict{Symbol,Any}(Symbol(words[i]) => parse(Float64, words[i + 1]) for i in 2:2:length(words))
    alg = ALGORITHMS[words[1]]()
    sol = if haskey(opts, :dt)
        # the save times as stops: a fixed step that does not divide an interval is cut there,
        # as pdeforge's fixed-step runs and the exported script do
        solve(prob, alg; dt = opts[:dt], adaptive = false, tstops = saveat, saveat = saveat)
    else
        solve(prob, alg; reltol = get(opts, :rtol, 1e-6), abstol = get(opts, :atol, 1e-9), saveat = saveat)
    end
    grids = Tuple(collect(Float64, sol[c]) for c in coords)
    solution = Tuple(Array{Float64}(sol[a]) for a in applied)
    return collect(Float64, sol[t]), grids, solution
end

end # module PDEForge
