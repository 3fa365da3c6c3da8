"""Deterministic synthetic instruction text in English and Chinese.

Benchmarks need realistic instruction pools without downloading data. Items
are built from our own templates and vocabulary, sampled with a skewed
(Zipf-like) distribution so that template words are frequent and topics are
not, as in real Self-Instruct / Alpaca pools. A controllable fraction of items
are near-duplicates: small word-level edits (swap, insert, delete, substitute)
of an earlier item, which is what the ROUGE-L filter exists to catch.

Every text is a list of pieces (words, or short Chinese words) joined with a
space (English) or nothing (Chinese), so edits work on words in both languages.
"""

import random

# --- English -----------------------------------------------------------------

EN_TEMPLATES = [
    "Write a {form} about {topic} .",
    "Write a {adj} {form} about {topic} for {audience} .",
    "Write a short {form} that explains {concept} to {audience} .",
    "Give me {n} tips for {activity} .",
    "Give {n} examples of {things} that are related to {topic} .",
    "Generate a list of {n} {things} related to {topic} .",
    "Explain the difference between {concept} and {concept} .",
    "Explain {concept} to {audience} in simple terms .",
    "Summarize the following {doc} in {n} sentences .",
    "Summarize the main points of the following {doc} about {topic} .",
    "Classify the following {items} as {label} or {label} .",
    "Translate the following sentence into {language} .",
    "What are the main causes of {problem} ?",
    "What are the most effective ways to reduce {problem} in {place} ?",
    "How can I improve my {skill} ?",
    "How can {audience} get better at {activity} ?",
    "Rewrite the following sentence to make it more {style} .",
    "Rewrite this {doc} in a {style} tone for {audience} .",
    "Create a {plan} for {activity} .",
    "Design a {n} day {plan} for {audience} who want to {goal} .",
    "Suggest {n} names for a {business} that {business_does} .",
    "Find the {property} of the following {math_obj} .",
    "Describe {topic} in {n} words .",
    "Describe what a typical day looks like for a {job} .",
    "Compose an email to {recipient} about {topic} .",
    "Compose a polite email to {recipient} asking for {request} .",
    "Identify the {feature} in the following {doc} .",
    "Compare {concept} and {concept} in terms of {aspect} .",
    "Provide an example of {concept} in {domain} .",
    "Write a {prog_language} function that {code_task} .",
    "Explain what the following {prog_language} code does .",
    "List the pros and cons of {activity} .",
    "List {n} {things} that every {job} should know about .",
    "Is the following statement true or false ? {statement}",
    "Answer the following question about {topic} in one paragraph .",
    "Come up with a creative title for a {form} about {topic} .",
    "Pretend you are a {job} and give advice to {audience} about {activity} .",
    "Brainstorm {n} ideas for a {event} related to {topic} .",
    "Tell me a {adj} story about {topic} .",
    "Convert the following {math_obj} into {unit} .",
    "Sort the following {items} from {order} .",
    "Edit the following paragraph to fix any {error_kind} .",
    "Make a shopping list for {event} with {n} people .",
    "Recommend {n} books about {topic} for {audience} .",
    "Why is {topic} important for {audience} ?",
    "Draft a speech for {audience} about {topic} .",
    "Generate {n} interview questions for a {job} .",
    "Create a quiz with {n} questions about {topic} .",
    "Write a dialogue between a {job} and {audience} about {topic} .",
    "Outline the steps needed for {activity} .",
    "Evaluate the following argument about {topic} .",
    "Predict how {topic} will change over the next {n} years .",
    "Plan a {n} day trip to {place} for {audience} .",
    "Write a product description for {thing} .",
    "Describe the smell , taste and texture of {food} .",
    "Suggest a recipe that uses {food} and {food} .",
    "Give feedback on the following {doc} written by {audience} .",
    "Argue for and against {topic} in a short debate .",
    "Turn the following notes about {topic} into a {form} .",
    "What questions would a {job} ask about {topic} ?",
    "Write a letter from {thing} to {audience} .",
    "Explain why {audience} should care about {topic} .",
    "Invent a new holiday that celebrates {topic} and describe its traditions .",
    "Describe a world where {topic} no longer exists .",
    "Name {n} famous people associated with {topic} .",
    "Write a review of a restaurant in {place} that serves {food} .",
    "What would happen if {thing} could talk ?",
    "Create a character profile for {audience} who loves {topic} .",
    "Rank the following {items} by {aspect} and explain your ranking .",
    "Give a one sentence definition of {concept} .",
]
EN_MODIFIERS = ["for {audience}", "in {place}", "using {thing}", "in about {n} words",
                "with a focus on {topic}", "without mentioning {topic}",
                "in the style of a {job}", "as if you were {audience}"]
EN_PREFIXES = ["Please", "Can you", "I need you to", "Could you please", "Now", "Your task is to"]
EN_CONTEXTS = [
    "I am a {job} living in {place} .",
    "My {relative} is interested in {topic} .",
    "We are organizing a {event} about {topic} next {when} .",
    "Our team is building a {product} for {audience} .",
    "I have been reading about {topic} lately .",
    "I teach {audience} about {topic} .",
    "Imagine you are visiting {place} with {thing} .",
    "Here is some background : {topic} matters to {audience} .",
]
EN_SUFFIXES = [
    "Mention {topic} at least once .",
    "Write it from the point of view of {thing} .",
    "Include a reference to {topic} .",
    "Assume the reader is {audience} .",
    "Keep it under {n} words .",
    "Use a {style} tone .",
    "Make sure to include {thing} .",
    "Explain your reasoning step by step .",
    "Format the answer as a numbered list .",
    "Do not use technical jargon .",
    "The answer should be suitable for {audience} .",
]
EN_SLOTS = {
    "form": ["poem", "short story", "blog post", "haiku", "song", "essay", "speech",
             "limerick", "tweet", "product description", "news article", "dialogue",
             "letter", "movie review", "slogan", "riddle", "joke", "sonnet", "report", "summary"],
    "adj": ["funny", "short", "persuasive", "detailed", "creative", "sad", "inspiring", "formal",
            "friendly", "humorous", "thoughtful", "simple", "motivational", "mysterious"],
    "topic": ["the ocean", "climate change", "artificial intelligence", "healthy eating",
              "time management", "remote work", "space exploration", "renewable energy",
              "social media", "the history of Rome", "machine learning", "friendship",
              "autumn leaves", "a rainy day", "city traffic", "online privacy", "coffee",
              "the solar system", "electric cars", "mental health", "public transport",
              "ancient Egypt", "the French Revolution", "photosynthesis", "volcanoes",
              "the stock market", "cryptocurrency", "video games", "urban gardening",
              "recycling", "the human brain", "sleep", "meditation", "marathon running",
              "chess", "jazz music", "the Olympic Games", "a lost dog", "a new job",
              "moving to a new city", "learning a language", "the internet", "democracy",
              "global warming", "plastic pollution", "honey bees", "the moon landing",
              "dinosaurs", "black holes", "quantum computing", "cloud computing",
              "cybersecurity", "the water cycle", "vaccines", "the immune system",
              "small businesses", "inflation", "personal finance", "saving money",
              "team work", "leadership", "public speaking", "customer service",
              "the Great Wall", "mountains", "a summer vacation", "winter holidays",
              "birthdays", "wedding planning", "parenting", "online shopping",
              "fast fashion", "street food", "vegetarian cooking", "baking bread",
              "tea culture", "football", "basketball", "swimming", "yoga", "robots",
              "self driving cars", "smart phones", "libraries", "museums", "art history",
              "the Renaissance", "modern architecture", "the rain forest", "deserts",
              "polar bears", "ocean currents", "earthquakes", "hurricanes", "wildfires",
              "the printing press", "electricity", "the industrial revolution",
              "free speech", "education reform", "homework", "exams", "college life",
              "job interviews", "remote teams", "open source software", "data science"],
    "audience": ["children", "a five year old", "high school students", "beginners",
                 "college students", "senior citizens", "software engineers", "new parents",
                 "small business owners", "teachers", "tourists", "non experts", "managers",
                 "nurses", "first time home buyers", "athletes", "my grandmother"],
    "concept": ["supply and demand", "recursion", "photosynthesis", "inflation", "gravity",
                "natural selection", "compound interest", "blockchain", "machine learning",
                "deep learning", "a neural network", "the greenhouse effect", "democracy",
                "object oriented programming", "a black hole", "the theory of relativity",
                "opportunity cost", "machine translation", "cloud computing", "encryption",
                "climate", "weather", "a virus", "bacteria", "a metaphor", "a simile",
                "an algorithm", "a database", "an API", "the scientific method",
                "cognitive bias", "renewable energy", "nuclear energy", "a budget",
                "a mortgage", "the stock market", "a recession", "osmosis", "DNA",
                "evolution", "entropy", "probability", "statistics", "linear regression"],
    "n": ["3", "5", "10", "three", "five", "ten", "two", "four", "seven", "20", "100", "7"],
    "things": ["activities", "ideas", "questions", "words", "facts", "books", "movies",
               "recipes", "exercises", "strategies", "mistakes", "habits", "tools",
               "apps", "games", "foods", "careers", "hobbies", "destinations", "inventions"],
    "doc": ["article", "paragraph", "text", "story", "email", "news report", "essay",
            "review", "conversation", "speech", "passage", "poem", "document"],
    "items": ["animals", "sentences", "words", "foods", "countries", "numbers", "movies",
              "products", "tweets", "reviews", "emails", "plants", "sports"],
    "label": ["positive", "negative", "neutral", "fruit", "vegetable", "mammal", "reptile",
              "spam", "not spam", "fact", "opinion", "formal", "informal", "true", "false"],
    "language": ["French", "Spanish", "German", "Chinese", "Japanese", "Italian", "Korean",
                 "Portuguese", "Russian", "Arabic", "Hindi"],
    "problem": ["air pollution", "climate change", "traffic congestion", "obesity",
                "unemployment", "poverty", "stress", "procrastination", "inflation",
                "water shortage", "food waste", "plastic pollution", "burnout", "insomnia",
                "loneliness", "deforestation", "cyberbullying", "misinformation"],
    "place": ["big cities", "schools", "the workplace", "rural areas", "developing countries",
              "our community", "hospitals", "the home"],
    "skill": ["writing skills", "public speaking", "time management", "memory",
              "English vocabulary", "coding skills", "focus", "productivity", "handwriting",
              "cooking", "negotiation skills", "critical thinking", "sleep quality"],
    "activity": ["learning a new language", "staying productive at home", "saving money",
                 "losing weight", "studying for exams", "running a marathon",
                 "starting a business", "traveling on a budget", "writing a resume",
                 "preparing for a job interview", "learning to code", "gardening",
                 "managing stress", "cooking healthy meals", "reading more books",
                 "working from home", "raising a puppy", "planning a wedding",
                 "moving abroad", "investing in stocks"],
    "style": ["formal", "casual", "polite", "concise", "persuasive", "friendly",
              "professional", "humorous", "academic", "optimistic"],
    "plan": ["workout plan", "study plan", "meal plan", "travel itinerary", "lesson plan",
             "marketing plan", "budget", "reading list", "daily schedule", "training program"],
    "goal": ["lose weight", "learn Python", "run faster", "sleep better", "save money",
             "read more", "speak Spanish", "get promoted", "build muscle", "reduce stress"],
    "business": ["coffee shop", "bakery", "startup", "bookstore", "pet store", "gym",
                 "restaurant", "consulting firm", "mobile app", "podcast", "clothing brand"],
    "business_does": ["sells organic food", "helps students find tutors",
                      "delivers flowers", "repairs bicycles", "teaches coding to kids",
                      "offers yoga classes", "makes handmade soap", "rents camping gear"],
    "property": ["sum", "average", "median", "area", "perimeter", "largest number",
                 "smallest value", "derivative", "square root", "prime factors"],
    "math_obj": ["numbers", "list of numbers", "triangle", "equation", "function",
                 "set of values", "temperature", "distance", "amount"],
    "unit": ["Celsius", "Fahrenheit", "kilometers", "miles", "kilograms", "pounds",
             "binary", "percent", "scientific notation"],
    "job": ["teacher", "doctor", "software engineer", "chef", "pilot", "nurse", "lawyer",
            "farmer", "data scientist", "journalist", "firefighter", "musician"],
    "recipient": ["my manager", "a customer", "my professor", "a colleague", "the landlord",
                  "a client", "the school principal", "my team", "a new employee"],
    "request": ["a deadline extension", "a meeting", "feedback", "a refund",
                "a letter of recommendation", "a day off", "more information"],
    "feature": ["main idea", "grammatical errors", "verbs", "nouns", "tone", "key points",
                "named entities", "logical fallacy", "theme", "author's opinion"],
    "aspect": ["cost", "speed", "safety", "ease of use", "environmental impact",
               "performance", "popularity", "reliability", "accuracy"],
    "domain": ["everyday life", "business", "biology", "economics", "computer science",
               "history", "physics", "sports", "medicine", "education"],
    "prog_language": ["Python", "JavaScript", "Java", "C++", "SQL", "Go", "Rust"],
    "code_task": ["reverses a string", "checks if a number is prime",
                  "sorts a list of numbers", "finds the largest element in an array",
                  "counts the words in a sentence", "removes duplicates from a list",
                  "computes the factorial of a number", "checks if a string is a palindrome",
                  "merges two sorted lists", "converts Celsius to Fahrenheit"],
    "statement": ["The sun rises in the west .", "Water boils at 100 degrees Celsius .",
                  "Bats are blind .", "The Great Wall is visible from space .",
                  "Humans have five senses .", "Tomatoes are fruits .",
                  "Lightning never strikes the same place twice ."],
    "food": ["pizza", "sushi", "dumplings", "chocolate", "tofu", "mango", "garlic", "honey",
             "noodles", "cheese", "lentils", "salmon", "avocado", "rice", "spinach", "yogurt"],
    "event": ["birthday party", "team building day", "charity event", "school fair",
              "picnic", "conference", "product launch", "dinner party"],
    "order": ["smallest to largest", "largest to smallest", "oldest to newest",
              "cheapest to most expensive"],
    "error_kind": ["grammar mistakes", "spelling errors", "punctuation errors", "typos"],
    "relative": ["brother", "sister", "mother", "father", "grandfather", "cousin", "son",
                 "daughter", "uncle", "aunt", "best friend", "neighbor", "roommate"],
    "when": ["week", "month", "year", "spring", "summer", "weekend", "Friday"],
    "product": ["mobile app", "website", "board game", "chatbot", "newsletter", "podcast",
                "online course", "smart watch", "browser extension", "video game"],
    "thing": ["a call to action", "an example", "a title", "a summary", "three key points",
              "a conclusion", "a question"],
}
EN_FILLERS = ["please", "briefly", "also", "really", "simple", "clearly", "very",
              "carefully", "short", "good", "new", "some", "the"]
EN_SYNONYMS = {
    "Write": ["Compose", "Create", "Draft"], "Give": ["Provide", "List", "Share"],
    "Explain": ["Describe", "Clarify"], "Describe": ["Explain", "Outline"],
    "short": ["brief", "quick"], "main": ["key", "primary"], "ways": ["methods", "strategies"],
    "improve": ["boost", "enhance"], "Create": ["Make", "Design"], "list": ["set"],
    "tips": ["suggestions", "pieces of advice"], "simple": ["plain", "easy"],
    "following": ["given", "below"], "about": ["on"], "examples": ["instances"],
    "Generate": ["Produce", "Create", "Write"], "Suggest": ["Propose", "Recommend"],
    "Summarize": ["Condense", "Sum up"], "Compose": ["Write", "Draft"],
    "List": ["Name", "Enumerate"], "Design": ["Plan", "Develop"], "Find": ["Compute", "Determine"],
    "Identify": ["Find", "Point out"], "Compare": ["Contrast"], "Provide": ["Give", "Offer"],
    "What": ["Which"], "How": ["In what ways"], "important": ["essential", "crucial"],
    "effective": ["useful", "practical"], "Tell": ["Give"], "story": ["tale"],
    "creative": ["catchy", "original"], "polite": ["courteous"], "causes": ["reasons"],
}

# --- Chinese -----------------------------------------------------------------
# Pieces are separated by spaces here; the text joins them with nothing.

ZH_TEMPLATES = [
    "请 写 一首 关于 {topic} 的 {poem} 。",
    "请 以 {topic} 为 主题 ， 写 一篇 {n} 字 左右 的 {genre} 。",
    "给出 {n} 个 关于 {topic} 的 建议 。",
    "解释 一下 什么 是 {concept} ， 并 举 一个 例子 。",
    "{concept} 和 {concept} 有 什么 区别 ？",
    "如何 提高 自己 的 {skill} ？",
    "请 把 下面 这句话 翻译 成 {language} 。",
    "总结 下面 这篇 {doc} 的 主要 内容 。",
    "为 {audience} 设计 一个 {plan} 。",
    "列出 {n} 种 {things} ， 并 简要 说明 它们 的 特点 。",
    "判断 下面 的 说法 是否 正确 ： {statement}",
    "用 {style} 的 语气 改写 下面 的 句子 。",
    "根据 以下 信息 ， 写 一封 给 {recipient} 的 {letter} 。",
    "分析 {problem} 的 主要 原因 ， 并 提出 解决 办法 。",
    "推荐 几本 适合 {audience} 阅读 的 关于 {topic} 的 书 。",
    "用 {prog_language} 写 一个 函数 ， {code_task} 。",
    "{audience} 应该 怎样 {activity} ？",
    "请 向 {audience} 简单 介绍 一下 {concept} 。",
    "{problem} 对 {place} 有 哪些 影响 ？",
    "写 一段 {n} 字 以内 的 {genre} ， 描述 {topic} 。",
    "假设 你 是 一名 {job} ， 请 给 {audience} 一些 关于 {activity} 的 建议 。",
    "将 下面 的 {items} 分为 {label} 和 {label} 两类 。",
    "比较 {concept} 和 {concept} 在 {aspect} 方面 的 不同 。",
    "为 一家 {business} 想 {n} 个 名字 。",
    "请 给 这篇 关于 {topic} 的 {genre} 起 一个 标题 。",
    "说说 你 对 {topic} 的 看法 。",
    "{topic} 为什么 对 {audience} 很 重要 ？",
    "制定 一个 {n} 天 的 {plan} ， 帮助 {audience} {goal} 。",
    "找出 下面 这段 话 中 的 {feature} 。",
    "计算 下列 {math_obj} 的 {property} 。",
    "描述 一下 {job} 的 一天 是 怎样 的 。",
    "列举 {n} 个 {activity} 时 常见 的 错误 。",
    "请 用 通俗 的 语言 解释 {concept} 的 原理 。",
    "写 一个 关于 {topic} 的 {adj} 故事 。",
    "帮 我 写 一份 {event} 的 {plan} 。",
    "为 {audience} 写 一篇 关于 {topic} 的 演讲稿 。",
    "给 一名 {job} 出 {n} 道 面试题 。",
    "出 一份 关于 {topic} 的 小测验 ， 包含 {n} 道 题 。",
    "写 一段 {job} 和 {audience} 之间 关于 {topic} 的 对话 。",
    "列出 {activity} 的 具体 步骤 。",
    "评价 下面 这个 关于 {topic} 的 观点 。",
    "预测 未来 {n} 年 {topic} 会 有 什么 变化 。",
    "为 {audience} 规划 一次 {n} 天 的 {place} 之旅 。",
    "为 {thing} 写 一段 产品 介绍 。",
    "描述 {food} 的 味道 和 口感 。",
    "推荐 一道 用 {food} 和 {food} 做 的 菜 。",
    "对 下面 这篇 {audience} 写 的 {doc} 提出 修改 意见 。",
    "就 {topic} 展开 一场 正反 双方 的 辩论 。",
    "如果 {thing} 会 说话 ， 它 会 说 什么 ？",
    "设想 一个 没有 {topic} 的 世界 ， 并 描述 它 。",
    "说出 {n} 位 与 {topic} 有关 的 名人 。",
    "为 {place} 的 一家 {food} 餐厅 写 一篇 点评 。",
    "以 {thing} 的 口吻 给 {audience} 写 一封 信 。",
    "为 什么 {audience} 应该 关心 {topic} ？",
    "用 一句话 给 {concept} 下 定义 。",
    "创造 一个 喜欢 {topic} 的 人物 ， 并 写 出 他 的 简介 。",
]
ZH_MODIFIERS = ["针对 {audience} ，", "结合 {topic} ，", "以 {place} 为 背景 ，",
                "用 {thing} 打 比方 ，", "站在 {job} 的 角度 ，", "不要 提到 {topic} ，"]
ZH_PREFIXES = ["请", "你 能 不能", "我 想 请 你", "麻烦 你", "现在 请"]
ZH_CONTEXTS = [
    "我 是 一名 在 {place} 工作 的 {job} 。",
    "我 的 {relative} 对 {topic} 很 感兴趣 。",
    "我们 下个 {when} 要 举办 一个 关于 {topic} 的 {event} 。",
    "我们 团队 正在 为 {audience} 开发 一款 {product} 。",
    "最近 我 在 读 关于 {topic} 的 书 。",
    "想象 你 正在 {place} 旅行 ， 身边 有 {thing} 。",
    "背景 ： {topic} 对 {audience} 很 重要 。",
]
ZH_SUFFIXES = [
    "请 在 回答 中 提到 {topic} 。",
    "请 从 {thing} 的 角度 来 写 。",
    "假设 读者 是 {audience} 。",
    "字数 不 超过 {n} 字 。",
    "语气 要 {style} 一些 。",
    "请 分 点 回答 。",
    "尽量 不要 使用 专业 术语 。",
    "回答 要 适合 {audience} 。",
    "请 给出 具体 的 例子 。",
]
ZH_SLOTS = {
    "topic": ["环境 保护", "人工 智能", "健康 饮食", "时间 管理", "城市 交通", "传统 节日",
              "气候 变化", "网络 安全", "家庭 教育", "职业 规划", "太空 探索", "垃圾 分类",
              "中国 历史", "古典 音乐", "数字 经济", "在线 学习", "运动 健身", "心理 健康",
              "旅游", "科技 创新", "春天 的 景色", "秋天 的 落叶", "大海", "月亮", "友谊",
              "母爱", "故乡", "春节", "中秋节", "端午节", "长城", "熊猫", "茶 文化",
              "书法", "京剧", "丝绸 之路", "唐诗", "宋词", "互联网", "智能 手机",
              "新能源 汽车", "电子 商务", "短视频", "社交 媒体", "远程 办公", "读书",
              "校园 生活", "高考", "考研", "留学", "就业", "创业", "理财", "房价",
              "养老", "医疗 改革", "乡村 振兴", "城市 化", "交通 拥堵", "空气 污染",
              "水 资源", "森林", "沙漠", "雨天", "冬天 的 雪", "夏天 的 夜晚", "星空",
              "机器人", "量子 计算", "区块链", "大 数据", "云 计算", "5G", "AI 绘画",
              "ChatGPT", "编程", "数学", "物理", "化学", "生物", "地理", "美食",
              "火锅", "咖啡", "跑步", "篮球", "足球", "游泳", "瑜伽", "围棋", "象棋",
              "动物 保护", "宠物", "孩子 的 成长", "老人 的 生活", "团队 合作", "领导力",
              "沟通 技巧", "演讲", "面试", "简历", "志愿 服务", "节约 用水", "低碳 生活"],
    "poem": ["诗", "五言 绝句", "七言 律诗", "现代诗", "打油诗", "词", "歌词"],
    "genre": ["文章", "散文", "议论文", "短文", "作文", "演讲稿", "新闻 稿", "日记",
              "小说", "广告 文案", "读后感", "评论", "故事", "倡议书"],
    "n": ["3", "5", "10", "三", "五", "十", "两", "四", "七", "100", "200", "500", "800"],
    "concept": ["机器 学习", "深度 学习", "神经 网络", "区块链", "通货 膨胀", "供求 关系",
                "光合 作用", "相对论", "万有 引力", "进化论", "复利", "量子 力学",
                "温室 效应", "云 计算", "大 数据", "物联网", "元宇宙", "边际 效应",
                "机会 成本", "比喻", "拟人", "递归", "算法", "数据库", "操作 系统",
                "人工 智能", "自然 语言 处理", "基因", "病毒", "细菌", "免疫 系统",
                "GDP", "CPI", "API", "HTTP 协议", "面向 对象 编程", "概率", "统计"],
    "skill": ["写作 能力", "口语 水平", "英语 听力", "学习 效率", "记忆力", "专注力",
              "编程 能力", "表达 能力", "沟通 能力", "时间 管理 能力", "阅读 速度",
              "逻辑 思维", "睡眠 质量", "演讲 水平", "数学 成绩"],
    "language": ["英文", "法语", "日语", "德语", "韩语", "西班牙语", "俄语", "文言文"],
    "doc": ["文章", "新闻", "报告", "论文", "对话", "小说", "演讲", "邮件", "评论"],
    "audience": ["小学生", "中学生", "大学生", "老年人", "上班族", "新手 父母", "初学者",
                 "程序员", "老师", "游客", "外国 朋友", "创业者", "运动员", "病人",
                 "家长", "孩子", "年轻人"],
    "plan": ["学习 计划", "健身 计划", "旅行 路线", "减肥 食谱", "营销 方案", "活动 方案",
             "课程 安排", "读书 计划", "理财 方案", "作息 时间表"],
    "things": ["水果", "运动", "动物", "职业", "交通 工具", "乐器", "编程 语言", "节日",
               "中国 菜", "花", "植物", "成语", "古诗", "发明", "学习 方法", "兴趣 爱好"],
    "statement": ["太阳 从 西边 升起 。", "水 在 100 度 时 沸腾 。", "鲸鱼 是 鱼类 。",
                  "地球 是 圆 的 。", "长城 在 太空 中 肉眼 可见 。", "蝙蝠 是 瞎子 。",
                  "番茄 是 水果 。"],
    "style": ["正式", "轻松", "幽默", "礼貌", "简洁", "委婉", "严肃", "亲切", "专业"],
    "recipient": ["老师", "经理", "客户", "同事", "父母", "朋友", "房东", "校长", "面试官"],
    "letter": ["信", "邮件", "感谢信", "道歉信", "请假条", "推荐信", "邀请函", "投诉信"],
    "problem": ["空气 污染", "交通 拥堵", "失眠", "拖延症", "近视", "肥胖", "网络 诈骗",
                "食品 浪费", "人口 老龄化", "青少年 沉迷 游戏", "房价 上涨", "就业 难",
                "水 污染", "噪音", "焦虑", "压力 过大"],
    "prog_language": ["Python", "Java", "JavaScript", "C++", "SQL", "Go"],
    "code_task": ["判断 一个 数 是否 为 素数", "把 字符串 反转", "对 列表 进行 排序",
                  "求 数组 中 的 最大值", "统计 一句话 中 的 字数", "计算 阶乘",
                  "删除 列表 中 重复 的 元素", "判断 回文 字符串", "合并 两个 有序 列表",
                  "把 摄氏度 转换 成 华氏度"],
    "activity": ["学好 英语", "保持 健康", "节约 用钱", "准备 考试", "找 工作",
                 "减肥", "学 编程", "养 宠物", "照顾 老人", "提高 效率", "早起",
                 "备考 雅思", "学 做饭", "练习 书法", "写 简历", "面试"],
    "place": ["城市", "农村", "学校", "公司", "家庭", "社会", "儿童", "老年人"],
    "job": ["医生", "老师", "程序员", "厨师", "律师", "记者", "警察", "护士",
            "设计师", "快递员", "农民", "飞行员"],
    "items": ["动物", "食物", "词语", "句子", "城市", "国家", "水果", "电影", "商品 评论"],
    "label": ["哺乳 动物", "鸟类", "水果", "蔬菜", "正面", "负面", "褒义词", "贬义词",
              "南方", "北方", "事实", "观点"],
    "aspect": ["成本", "效率", "安全性", "易用性", "环境 影响", "性能", "优缺点", "适用 场景"],
    "business": ["咖啡店", "面包店", "书店", "奶茶店", "健身房", "宠物店", "花店",
                 "科技 公司", "火锅店", "民宿", "培训 机构"],
    "goal": ["减肥", "学好 数学", "提高 成绩", "改善 睡眠", "存钱", "戒烟", "学会 游泳"],
    "feature": ["错别字", "病句", "中心 思想", "修辞 手法", "关键词", "人名 和 地名", "动词"],
    "math_obj": ["数字", "数据", "三角形", "方程", "函数", "数列"],
    "property": ["平均数", "总和", "面积", "周长", "中位数", "最大值", "导数", "解"],
    "adj": ["有趣", "感人", "简短", "温馨", "神秘", "搞笑", "励志", "悲伤"],
    "food": ["饺子", "火锅", "豆腐", "芒果", "大蒜", "蜂蜜", "面条", "奶酪", "三文鱼", "牛油果",
             "米饭", "菠菜", "酸奶", "月饼", "粽子", "烤鸭", "小笼包", "螺蛳粉"],
    "relative": ["哥哥", "姐姐", "妈妈", "爸爸", "爷爷", "奶奶", "表妹", "儿子", "女儿",
                 "叔叔", "好朋友", "邻居", "室友"],
    "when": ["周", "月", "周末", "学期", "季度"],
    "product": ["手机 应用", "网站", "桌游", "小程序", "聊天 机器人", "在线 课程",
                "智能 手表", "游戏"],
    "event": ["生日 聚会", "公司 年会", "运动会", "毕业 典礼", "家长会", "读书会", "婚礼"],
}
ZH_FILLERS = ["请", "简单", "详细", "一下", "也", "具体", "一些", "认真", "地", "好",
              "我们", "可以", "非常"]
ZH_SYNONYMS = {
    "写": ["创作", "撰写"], "给出": ["提供", "列出"], "解释": ["说明", "介绍"],
    "如何": ["怎样", "怎么"], "建议": ["意见", "方法"], "主要": ["重要"],
    "下面": ["以下"], "一篇": ["一段"], "设计": ["制定"], "区别": ["不同"],
    "提高": ["提升"], "原因": ["因素"], "推荐": ["介绍"], "总结": ["概括"],
    "列出": ["列举", "写出"], "分析": ["探讨", "研究"], "描述": ["描写", "讲述"],
    "说明": ["解释", "阐述"], "判断": ["分析"], "改写": ["重写"], "比较": ["对比"],
    "什么": ["哪些"], "一个": ["一种"], "方法": ["办法", "途径"], "看法": ["观点", "想法"],
    "简要": ["简单"], "重要": ["关键"], "特点": ["特征"], "计算": ["求出"], "故事": ["小说"],
}

# Open-vocabulary topics: real instruction pools name thousands of things, so
# most topics are composed from these word lists rather than picked whole.
EN_NOUNS = """
apple bicycle bridge camera castle cloud compass desert dragon engine forest garden
glacier guitar harbor island jungle kitchen ladder lantern library lighthouse market
meadow mirror monastery mountain museum notebook orchard painting piano planet pond
prison pyramid railway river robot rocket satellite ship spider stadium station statue
storm submarine telescope temple theater tower tractor tree tunnel umbrella valley
village violin volcano wallet waterfall whale window wolf ambition anxiety balance
bravery budget career charity childhood community competition confidence courage
creativity curiosity diet discipline diversity economy empathy energy equality ethics
failure family fear freedom gratitude happiness honesty hope identity imagination
independence innovation justice kindness knowledge loyalty memory migration motivation
nature nostalgia patience peace poverty progress religion resilience responsibility
science security silence society solitude success sustainability technology tolerance
tradition trust truth wealth wisdom algorithm database spreadsheet password browser
server smartphone laptop keyboard printer website chatbot drone sensor battery
microchip network software compiler bread cheese chocolate cookie curry dumpling
noodles pasta pizza rice salad sandwich soup sushi tomato vanilla yogurt honey mango
lemon garlic eagle elephant fox giraffe hedgehog kangaroo koala lion octopus owl panda
parrot penguin rabbit shark snail squirrel tiger turtle zebra dolphin butterfly ant
crow astronaut baker carpenter detective engineer gardener librarian mechanic painter
plumber poet programmer scientist soldier student tailor veterinarian writer clock
diamond feather key map moon sun star river ocean candle bell coin crown sword shield
letter postcard diary photograph radio television newspaper magazine podcast festival
wedding funeral holiday journey vacation airport hospital factory farm office
restaurant hotel bakery pharmacy prison courtroom classroom laboratory greenhouse
""".split()
EN_ADJECTIVES = """
abandoned ancient angry beautiful bitter brave bright broken busy calm careful cheap
clever cold colorful crowded curious dangerous dark deep delicious digital distant dry
dusty elegant empty enormous expensive famous fast fierce flexible foggy fragile fresh
friendly frozen funny gentle giant golden green haunted healthy heavy hidden honest
huge humble hungry icy invisible jealous lazy little local lonely loud lucky magical
modern mysterious narrow nervous noisy old ordinary peaceful polite popular powerful
precious proud quiet rare reliable remote rich rusty sacred safe secret shiny silent
sleepy small smart soft spicy strange strong sunny sweet tall tiny tired traditional
tropical unusual urban vintage warm wealthy wild windy wise wooden young forgotten
""".split()
EN_PLACES = """
Paris Tokyo London Beijing Shanghai Kenya Brazil Canada Egypt India Mexico Norway Peru
Spain Sweden Italy Greece Iceland Australia Vietnam Chicago Berlin Cairo Seoul Istanbul
Lagos Toronto Moscow Sydney Lisbon Vienna Prague Dublin Havana Nairobi Bangkok Mumbai
""".split() + ["New York", "the Alps", "the Sahara", "the Amazon", "the Arctic",
               "a small town", "the suburbs", "a space station", "the countryside"]
EN_ASPECTS = ["history", "future", "origins", "role", "benefits", "cost", "science",
              "economics", "ethics", "importance", "dangers", "psychology", "culture",
              "evolution", "design", "impact"]
ZH_NOUNS = """
苹果 自行车 桥梁 相机 城堡 云朵 指南针 沙漠 龙 发动机 森林 花园 冰川 吉他 港口 岛屿 丛林
厨房 梯子 灯笼 图书馆 灯塔 市场 草原 镜子 寺庙 高山 博物馆 笔记本 海洋 果园 油画 钢琴
星球 池塘 金字塔 铁路 河流 机器人 火箭 卫星 学校 轮船 商店 蜘蛛 体育场 车站 雕像 暴风雨
潜水艇 望远镜 剧院 高塔 拖拉机 大树 隧道 雨伞 山谷 村庄 小提琴 火山 钱包 瀑布 鲸鱼 窗户
梦想 焦虑 平衡 勇气 预算 事业 慈善 童年 气候 社区 竞争 自信 创造力 好奇心 饮食 纪律
多样性 经济 教育 同理心 能源 平等 伦理 失败 家庭 恐惧 自由 友谊 感恩 幸福 健康 历史 诚实
希望 想象力 独立 创新 正义 善良 知识 语言 领导力 忠诚 记忆 音乐 自然 乡愁 耐心 和平 贫困
隐私 效率 进步 韧性 责任 科学 安全 寂静 社会 孤独 成功 科技 宽容 传统 信任 真相 财富 智慧
算法 数据库 电子表格 密码 浏览器 服务器 智能手机 键盘 打印机 网站 聊天机器人 无人机
传感器 电池 芯片 网络 软件 编译器 面包 奶酪 巧克力 咖啡 饼干 咖喱 饺子 面条 披萨 米饭
沙拉 三明治 寿司 西红柿 酸奶 蜂蜜 芒果 柠檬 大蒜 月饼 粽子 豆腐 包子 烤鸭 老鹰 大象
狐狸 长颈鹿 刺猬 袋鼠 考拉 狮子 章鱼 猫头鹰 熊猫 鹦鹉 企鹅 兔子 鲨鱼 蜗牛 松鼠 老虎 乌龟
斑马 海豚 蝴蝶 蜜蜂 蚂蚁 乌鸦 宇航员 面包师 木匠 侦探 工程师 园丁 图书管理员 机械师
画家 水管工 诗人 科学家 士兵 裁缝 兽医 作家 时钟 钻石 羽毛 钥匙 地图 月亮 太阳 星星 蜡烛
铃铛 硬币 王冠 宝剑 盾牌 明信片 日记 照片 收音机 电视 报纸 杂志 播客 节日 婚礼 假期 旅程
机场 医院 工厂 农场 办公室 餐厅 酒店 药店 法庭 教室 实验室 温室 胡同 茶馆 庙会 灯会
""".split()
ZH_ADJECTIVES = """
古老 愤怒 美丽 苦涩 勇敢 明亮 破碎 忙碌 平静 便宜 聪明 寒冷 五彩 拥挤 好奇 危险 黑暗
深邃 美味 遥远 干燥 优雅 空旷 巨大 昂贵 著名 快速 凶猛 灵活 脆弱 新鲜 友好 冰冻 有趣
温柔 金色 绿色 神秘 健康 沉重 隐藏 诚实 谦虚 饥饿 懒惰 小小 本地 孤独 吵闹 幸运 神奇
现代 狭窄 紧张 平凡 和平 礼貌 流行 强大 珍贵 骄傲 安静 稀有 可靠 偏远 富有 生锈 神圣
安全 秘密 闪亮 沉默 简单 柔软 麻辣 奇怪 坚强 阳光 甜蜜 高大 微小 传统 热带 复古 温暖
野生 智慧 年轻 被遗忘
""".split()
ZH_PLACES = """
北京 上海 广州 深圳 成都 西安 杭州 南京 重庆 武汉 拉萨 桂林 苏州 厦门 青岛 哈尔滨 云南
新疆 西藏 内蒙古 东京 巴黎 伦敦 纽约 埃及 非洲 南极 北极 亚马逊 撒哈拉 小镇 乡村 郊区
空间站 海岛 江南 黄河 长江 敦煌 丽江
""".split()
ZH_ASPECTS = ["历史", "未来", "起源", "作用", "意义", "好处", "坏处", "发展", "影响",
              "文化", "原理", "设计", "风险", "价值"]


def _topic(rng: random.Random, lang: str, slots: dict) -> str:
    """A topic phrase, usually composed so the vocabulary stays open-ended."""
    kind = rng.random()
    if lang == "en":
        noun, other = rng.sample(EN_NOUNS, 2)
        if kind < 0.3:
            return _skewed_choice(rng, slots["topic"])
        if kind < 0.45:
            return "the " + noun
        if kind < 0.65:
            return "a %s %s" % (rng.choice(EN_ADJECTIVES), noun)
        if kind < 0.8:
            return "the %s of the %s" % (rng.choice(EN_ASPECTS), noun)
        if kind < 0.9:
            return "the %s in %s" % (noun, rng.choice(EN_PLACES))
        return "how the %s changed the %s" % (noun, other)
    noun, other = rng.sample(ZH_NOUNS, 2)
    if kind < 0.3:
        return _skewed_choice(rng, slots["topic"])
    if kind < 0.45:
        return noun
    if kind < 0.65:
        return "%s 的 %s" % (rng.choice(ZH_ADJECTIVES), noun)
    if kind < 0.8:
        return "%s 的 %s" % (noun, rng.choice(ZH_ASPECTS))
    if kind < 0.9:
        return "%s 的 %s" % (rng.choice(ZH_PLACES), noun)
    return "%s 对 %s 的 影响" % (noun, other)


LANGS = {
    "en": (EN_TEMPLATES, EN_PREFIXES, EN_CONTEXTS, EN_SUFFIXES, EN_SLOTS, EN_FILLERS, EN_SYNONYMS,
           EN_MODIFIERS),
    "zh": (ZH_TEMPLATES, ZH_PREFIXES, ZH_CONTEXTS, ZH_SUFFIXES, ZH_SLOTS, ZH_FILLERS, ZH_SYNONYMS,
           ZH_MODIFIERS),
}
PUNCTUATION = {".", "?", "!", ",", "。", "？", "，", "：", "！"}


def _skewed_choice(rng: random.Random, options: list):
    """Pick with a long-tailed distribution: early options common, late ones rare."""
    if rng.random() < 0.5:
        return rng.choice(options)
    # Log-uniform index: P(i) roughly proportional to 1 / (i + 1).
    index = int(len(options) ** rng.random()) - 1
    return options[min(index, len(options) - 1)]


def _open_slot(rng: random.Random, name: str, slots: dict, lang: str) -> str:
    """A slot value; topics, audiences and things are usually composed."""
    if name == "topic":
        return _topic(rng, lang, slots)
    composed = rng.random() < 0.5
    if name == "audience" and composed:
        job = _skewed_choice(rng, slots["job"])
        if lang == "en":
            return "a %s %s" % (rng.choice(EN_ADJECTIVES), job)
        return "%s 的 %s" % (rng.choice(ZH_ADJECTIVES), job)
    if name == "thing" and composed:
        if lang == "en":
            return "a %s %s" % (rng.choice(EN_ADJECTIVES), rng.choice(EN_NOUNS))
        return "一只 %s 的 %s" % (rng.choice(ZH_ADJECTIVES), rng.choice(ZH_NOUNS))
    if name == "thing" and lang == "zh":
        return rng.choice(ZH_NOUNS)
    return _skewed_choice(rng, slots[name])


def _fill(rng: random.Random, pattern: str, slots: dict, lang: str) -> list[str]:
    pieces = []
    used = []
    for piece in pattern.split(" "):
        if piece.startswith("{") and piece.endswith("}"):
            name = piece[1:-1]
            value = _open_slot(rng, name, slots, lang)
            while value in used:  # "X and X" reads as nonsense
                value = _open_slot(rng, name, slots, lang)
            used.append(value)
            pieces.extend(value.split(" "))
        else:
            pieces.append(piece)
    return pieces


def _fresh(rng: random.Random, lang: str) -> list[str]:
    """A new instruction as a list of pieces."""
    templates, prefixes, contexts, suffixes, slots, _, synonyms, modifiers = LANGS[lang]
    pieces = _fill(rng, _skewed_choice(rng, templates), slots, lang)
    # Vary the wording of the template itself, as different writers would.
    for i, piece in enumerate(pieces):
        if piece in synonyms and rng.random() < 0.4:
            pieces[i:i + 1] = rng.choice(synonyms[piece]).split(" ")
    if rng.random() < 0.35:
        modifier = _fill(rng, rng.choice(modifiers), slots, lang)
        if lang == "en" and pieces[-1] in PUNCTUATION:
            pieces[-1:-1] = modifier
        elif lang == "zh":
            pieces = modifier + pieces
    if rng.random() < 0.2:
        prefix = rng.choice(prefixes).split(" ")
        if lang == "en":
            pieces[0] = pieces[0].lower()
        pieces = prefix + pieces
    if rng.random() < 0.3:
        pieces = _fill(rng, rng.choice(contexts), slots, lang) + pieces
    if rng.random() < 0.4:
        pieces += _fill(rng, rng.choice(suffixes), slots, lang)
    return pieces


def _edit(rng: random.Random, pieces: list[str], lang: str) -> list[str]:
    """A paraphrase-ish copy: 1-3 word swaps, insertions, deletions or substitutions."""
    _, _, _, _, _, fillers, synonyms, _ = LANGS[lang]
    pieces = list(pieces)
    for _ in range(rng.randint(1, 3)):
        words = [i for i, p in enumerate(pieces) if p not in PUNCTUATION]
        if len(words) < 3:
            break
        i = rng.choice(words)
        kind = rng.random()
        if kind < 0.25 and i + 1 < len(pieces) and pieces[i + 1] not in PUNCTUATION:
            pieces[i], pieces[i + 1] = pieces[i + 1], pieces[i]
        elif kind < 0.5:
            pieces.insert(i, rng.choice(fillers))
        elif kind < 0.75:
            del pieces[i]
        elif pieces[i] in synonyms:
            pieces[i:i + 1] = rng.choice(synonyms[pieces[i]]).split(" ")
        else:
            pieces[i] = rng.choice(fillers)
    return pieces


def _join(pieces: list[str], lang: str) -> str:
    if lang == "zh":
        return "".join(pieces)
    text = " ".join(pieces)
    for mark in (" .", " ?", " ,", " !"):
        text = text.replace(mark, mark[1:])
    return text


def _piece_lists(n: int, lang: str, rng: random.Random, near_dup_fraction: float):
    made: list[list[str]] = []
    for _ in range(n):
        if made and rng.random() < near_dup_fraction:
            made.append(_edit(rng, rng.choice(made), lang))
        else:
            made.append(_fresh(rng, lang))
    return made


def instructions(n: int, lang: str = "en", seed: int = 0,
                 near_dup_fraction: float = 0.1) -> list[str]:
    """n instruction texts; about near_dup_fraction of them are edits of earlier ones."""
    rng = random.Random(seed)
    return [_join(p, lang) for p in _piece_lists(n, lang, rng, near_dup_fraction)]


def _sentence(rng: random.Random, lang: str) -> str:
    """Filler prose for inputs and outputs (content does not matter, length does)."""
    slots = LANGS[lang][4]
    if lang == "en":
        pattern = rng.choice([
            "{topic} is closely related to {concept} .",
            "Many {audience} find {activity} difficult at first .",
            "One of the main causes of {problem} is {topic} .",
            "A good {plan} should focus on {aspect} .",
            "For example , a {job} might use {concept} every day .",
        ])
    else:
        pattern = rng.choice([
            "{topic} 和 {concept} 有 密切 的 关系 。",
            "很多 {audience} 一开始 觉得 {activity} 很 难 。",
            "{problem} 的 一个 重要 原因 是 {topic} 。",
            "一个 好 的 {plan} 应该 关注 {aspect} 。",
            "比如 ， {job} 每天 都 可能 用到 {concept} 。",
        ])
    return _join(_fill(rng, pattern, slots, lang), lang)


def alpaca_records(n: int, lang: str = "en", seed: int = 0,
                   near_dup_fraction: float = 0.1) -> list[dict]:
    """n Alpaca-style {instruction, input, output} dicts; about 40% have an input."""
    rng = random.Random(seed)
    records = []
    for pieces in _piece_lists(n, lang, rng, near_dup_fraction):
        sep = " " if lang == "en" else ""
        has_input = rng.random() < 0.4
        records.append({
            "instruction": _join(pieces, lang),
            "input": sep.join(_sentence(rng, lang) for _ in range(rng.randint(1, 3))) if has_input else "",
            "output": sep.join(_sentence(rng, lang) for _ in range(rng.randint(2, 6))),
        })
    return records


OPEN_VOCABULARY = 200_000  # names in the open vocabulary of stream_alpaca_records
_SYLLABLES = "ka lo mi ren tos va quin dar el fu gis hom ix jul nor pe rat sul tem ub".split()


def _name(rng: random.Random, lang: str) -> str:
    """A name from an open, long-tailed vocabulary (P(i) about 1 / i): real datasets of millions name
    far more things than the word lists above, and a few hundred nouns would make every word common."""
    i = int(OPEN_VOCABULARY ** rng.random()) - 1
    if lang == "zh":  # two characters of the CJK block, as most Chinese words
        return chr(0x4E00 + i % 20_000) + chr(0x4E00 + (i * 7919 + 13) % 20_000)
    word = ""
    while True:
        i, rest = divmod(i, len(_SYLLABLES))
        word += _SYLLABLES[rest]
        if not i:
            return word


def stream_alpaca_records(n: int, lang: str = "mixed", seed: int = 0, near_dup_fraction: float = 0.1,
                          remembered: int = 100_000):
    """Like alpaca_records, one record at a time for files of millions: ``lang`` may be ``mixed``
    (each record English or Chinese at random); most nouns come from an open vocabulary (_name);
    a near-duplicate edits one of the last ``remembered`` records of its language, so memory stays flat."""
    rng = random.Random(seed)
    recent: dict[str, list[list[str]]] = {"en": [], "zh": []}
    nouns = {"en": set(EN_NOUNS), "zh": set(ZH_NOUNS)}
    for _ in range(n):
        record_lang = rng.choice(("en", "zh")) if lang == "mixed" else lang
        made = recent[record_lang]
        if made and rng.random() < near_dup_fraction:
            pieces = _edit(rng, rng.choice(made), record_lang)
        else:
            pieces = [_name(rng, record_lang) if p in nouns[record_lang] and rng.random() < 0.8 else p
                      for p in _fresh(rng, record_lang)]
        if len(made) < remembered:
            made.append(pieces)
        else:
            made[rng.randrange(remembered)] = pieces
        sep = " " if record_lang == "en" else ""
        has_input = rng.random() < 0.4
        yield {
            "instruction": _join(pieces, record_lang),
            "input": sep.join(_sentence(rng, record_lang) for _ in range(rng.randint(1, 3))) if has_input else "",
            "output": sep.join(_sentence(rng, record_lang) for _ in range(rng.randint(2, 6))),
        }

if __name__ == "__main__":
    for lang in ("en", "zh"):
        for text in instructions(12, lang, seed=1, near_dup_fraction=0.3):
            print(text)
        print(alpaca_records(1, lang, seed=2)[0])
